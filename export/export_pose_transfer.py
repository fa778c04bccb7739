"""Export the pose-transfer generator to model_repository/pose_transfer/<version>/model.onnx.

    python -m export.export_pose_transfer --checkpoint runs/pose-transfer-ssim4/best.pt [--version 1]

Inputs are the uint8 arrays of fashionpixel/pose_transfer.network_inputs (source on white, parts,
target heatmaps, warped source + coverage); the output is uint8 RGB on the canvas. Parity: ONNX
Runtime may differ from PyTorch by a grey level where a value sits on a rounding boundary.
"""
from pathlib import Path

from export.onnx_tools import export_command
from export.triton_config import ModelSpec, Tensor
from fashionpixel.pose_transfer import CANVAS_H, CANVAS_W
from training.models.pose_transfer import PoseTransferServing
from training.train_pose_transfer import PoseTransferGAN

PARITY_ATOL = 1.0

SPEC = ModelSpec(
    name="pose_transfer",
    inputs=(Tensor("source", "UINT8", (CANVAS_H, CANVAS_W, 3)), Tensor("parts", "UINT8", (CANVAS_H, CANVAS_W, 1)),
            Tensor("pose", "UINT8", (CANVAS_H, CANVAS_W, 18)), Tensor("warped", "UINT8", (CANVAS_H, CANVAS_W, 4))),
    outputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
)

if __name__ == "__main__":
    export_command(__doc__, SPEC, lambda _: PoseTransferGAN(), lambda net: PoseTransferServing(net.gen),
                   Path("runs/pose-transfer-ssim4/best.pt"), PARITY_ATOL)
