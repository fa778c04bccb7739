"""Export the skin generator to model_repository/skin/<version>/model.onnx.

    python -m export.export_skin --checkpoint runs/skin/best.pt [--version 1]

The graph takes the 7-channel uint8 input of fashionpixel/skin.py:network_input and returns uint8 RGB,
writing only inside the skin mask. Parity: ONNX Runtime may differ from PyTorch by one grey level where
a value sits on a rounding boundary.
"""

from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import SPECS
from fashionpixel.models import SKIN
from fashionpixel.skin import CHANNELS
from training.models.skin import Pix2Pix, SkinServing

PARITY_ATOL = 1.0

if __name__ == "__main__":
    export_command(
        __doc__,
        SPECS[SKIN.name],
        lambda _: Pix2Pix(CHANNELS, adversarial=True),
        lambda net: SkinServing(net.gen),
        Path("runs/skin/best.pt"),
        PARITY_ATOL,
    )
