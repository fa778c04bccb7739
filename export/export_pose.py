"""Export the keypoint checkpoint to model_repository/pose/<version>/model.onnx with its configs.

    python -m export.export_pose --checkpoint runs/pose/best.pt [--version 1]
    python -m export.export_pose --checkpoint runs/pose-crops/best.pt --name pose_crops   # the crop specialist

Parity: ONNX Runtime's float16 heatmaps agree with PyTorch within 2e-3 (half-precision rounding
of values up to ~1).
"""

from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import SPECS
from fashionpixel.models import POSE, POSE_CROPS
from training.models.pose import PoseNet, PoseNetServing

PARITY_ATOL = 2e-3

if __name__ == "__main__":
    export_command(
        __doc__,
        SPECS[POSE.name],
        lambda _: PoseNet(),
        PoseNetServing,
        Path("runs/pose/best.pt"),
        PARITY_ATOL,
        also=(SPECS[POSE_CROPS.name],),
    )
