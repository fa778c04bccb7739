"""Export the segmentation checkpoint to model_repository/segmentation/<version>/model.onnx.

    python -m export.export_segmentation --checkpoint runs/segmentation/best.pt [--version 1]

Checks that ONNX Runtime agrees with PyTorch (max |Δprobability| ≤ 1e-3: the outputs are float16
probabilities, whose rounding alone is up to ~5e-4) and writes the CPU and GPU Triton configs.
"""
from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import ModelSpec, Tensor
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training.models.segmentation import SegNet, SegNetServing

PARITY_ATOL = 1e-3

SPEC = ModelSpec(
    name="segmentation",
    inputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
    outputs=(Tensor("person", "FP16", (2, CANVAS_H, CANVAS_W)), Tensor("fashion", "FP16", (7, CANVAS_H, CANVAS_W))),
)

if __name__ == "__main__":
    export_command(__doc__, SPEC, SegNet, SegNetServing, Path("runs/segmentation/best.pt"), PARITY_ATOL)
