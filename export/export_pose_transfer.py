"""Export the pose-transfer generator to model_repository/pose_transfer/<version>/model.onnx.

    python -m export.export_pose_transfer --checkpoint runs/pose-transfer-copy2/last.pt [--version 1] [--repository DIR]

Inputs are the uint8 arrays of fashionpixel/pose_transfer.network_inputs (source on white, parts,
target heatmaps, warped source + coverage); the outputs are uint8 on the canvas: the RGB `image`, and
the `gate`, `alpha` and `painted` RGB it was composed from, which the service composes again at the
output's resolution (fashionpixel/pose_transfer.compose_highres). Parity: ONNX Runtime may differ from
PyTorch by a grey level where a value sits on a rounding boundary.
"""

from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import SPECS
from fashionpixel.models import POSE_TRANSFER
from training.models.pose_transfer import PoseTransferGAN, PoseTransferServing

PARITY_ATOL = 1.0

if __name__ == "__main__":
    export_command(
        __doc__,
        SPECS[POSE_TRANSFER.name],
        lambda _: PoseTransferGAN(),
        lambda net: PoseTransferServing(net.gen),
        # issue 25's second fine-tune (stage 4 was runs/pose-transfer-ssim4/best.pt)
        Path("runs/pose-transfer-copy2/last.pt"),
        PARITY_ATOL,
    )
