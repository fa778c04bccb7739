"""Export the keypoint checkpoint to model_repository/pose/<version>/model.onnx with its configs.

    python -m export.export_pose --checkpoint runs/pose/best.pt [--version 1]

Parity: ONNX Runtime's float16 heatmaps agree with PyTorch within 2e-3 (half-precision rounding
of values up to ~1).
"""
import argparse
from pathlib import Path

import torch

from export.onnx_tools import export_onnx, parity
from export.triton_config import ModelSpec, Tensor, write_configs
from fashionpixel.keypoints import CANVAS_H, CANVAS_W, STRIDE
from training.models.pose import PoseNet, PoseNetServing

REPO = Path(__file__).resolve().parent.parent
PARITY_ATOL = 2e-3

SPEC = ModelSpec(
    name="pose",
    inputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
    outputs=(Tensor("heatmaps", "FP16", (18, CANVAS_H // STRIDE, CANVAS_W // STRIDE)),),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=REPO / "runs/pose/best.pt")
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository")
    ap.add_argument("--version", type=int, default=1)
    args = ap.parse_args()
    net = PoseNet()
    net.load_state_dict(torch.load(args.checkpoint, weights_only=False)["model"])
    model = PoseNetServing(net).eval()
    example = torch.randint(0, 256, (2, CANVAS_H, CANVAS_W, 3), dtype=torch.uint8)
    model_dir = write_configs(SPEC, args.repository)
    path = model_dir / str(args.version) / "model.onnx"
    export_onnx(model, example, path, "image", ["heatmaps"])
    diffs = parity(model, example, path, "image", ["heatmaps"], PARITY_ATOL)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); parity max |Δ| {diffs} ≤ {PARITY_ATOL}")


if __name__ == "__main__":
    main()
