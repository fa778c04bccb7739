"""Export the cutout checkpoint to model_repository/cutout/<version>/model.onnx.

    python -m export.export_cutout --checkpoint runs/cutout/best.pt [--version 1]

Same graph conventions as the segmentation model (uint8 canvas in, float16 probabilities out) and
the same parity tolerance, for the same reason (float16 rounding alone is up to ~5e-4).
"""
from pathlib import Path

from export.export_segmentation import PARITY_ATOL
from export.onnx_tools import export_command
from export.triton_config import ModelSpec, Tensor
from fashionpixel.labels import GARMENT_CLASSES
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training.models.segmentation import SegNetServing
from training.models.segmentation_archs import recorded_arch
from training.train_cutout import garment_net

SPEC = ModelSpec(
    name="cutout",
    inputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
    outputs=(Tensor("garment", "FP16", (len(GARMENT_CLASSES), CANVAS_H, CANVAS_W)),),
)

if __name__ == "__main__":
    export_command(__doc__, SPEC, lambda args: garment_net(recorded_arch(args)), SegNetServing, Path("runs/cutout/best.pt"), PARITY_ATOL)
