"""Export the cutout checkpoint to model_repository/cutout/<version>/model.onnx.

    python -m export.export_cutout --checkpoint runs/cutout/best.pt [--version 1]

Same graph conventions as the segmentation model (uint8 canvas in, float16 probabilities out) and
the same parity tolerance, for the same reason (float16 rounding alone is up to ~5e-4).
"""

from pathlib import Path

from export.onnx_tools import PROBABILITY_ATOL, export_command
from export.triton_config import SPECS
from fashionpixel.models import CUTOUT
from training.models.cutout import garment_net
from training.models.segmentation import SegNetServing
from training.models.segmentation_archs import recorded_arch

PARITY_ATOL = PROBABILITY_ATOL

if __name__ == "__main__":
    export_command(
        __doc__,
        SPECS[CUTOUT.name],
        lambda args: garment_net(recorded_arch(args)),
        SegNetServing,
        Path("runs/cutout/best.pt"),
        PARITY_ATOL,
    )
