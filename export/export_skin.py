"""Export the skin generator to model_repository/skin/<version>/model.onnx.

    python -m export.export_skin --checkpoint runs/skin/best.pt [--version 1]

The graph takes the 7-channel uint8 input of fashionpixel/skin.py:network_input and returns uint8 RGB,
writing only inside the skin mask. Parity: ONNX Runtime may differ from PyTorch by one grey level where
a value sits on a rounding boundary.
"""
from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import ModelSpec, Tensor
from fashionpixel.skin import CANVAS_H, CANVAS_W, CHANNELS
from training.models.skin import SkinServing
from training.train_skin import Pix2Pix

PARITY_ATOL = 1.0

SPEC = ModelSpec(
    name="skin",
    inputs=(Tensor("inputs", "UINT8", (CANVAS_H, CANVAS_W, CHANNELS)),),
    outputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
)

if __name__ == "__main__":
    export_command(__doc__, SPEC, lambda _: Pix2Pix(CHANNELS, adversarial=True), lambda net: SkinServing(net.gen),
                   Path("runs/skin/best.pt"), PARITY_ATOL)
