"""Export the segmentation checkpoint to model_repository/segmentation/<version>/model.onnx.

    python -m export.export_segmentation --checkpoint runs/segmentation/best.pt [--version 1]

Checks that ONNX Runtime agrees with PyTorch (max |Δprobability| ≤ 1e-3: the outputs are float16
probabilities, whose rounding alone is up to ~5e-4) and writes the CPU and GPU Triton configs.
"""
import argparse
from pathlib import Path

import torch

from export.onnx_tools import export_onnx, parity
from export.triton_config import ModelSpec, Tensor, write_configs
from training.models.segmentation import SegNet, SegNetServing
from training.train_segmentation import HEIGHT, WIDTH

REPO = Path(__file__).resolve().parent.parent
PARITY_ATOL = 1e-3

SPEC = ModelSpec(
    name="segmentation",
    inputs=(Tensor("image", "UINT8", (HEIGHT, WIDTH, 3)),),
    outputs=(Tensor("person", "FP16", (2, HEIGHT, WIDTH)), Tensor("fashion", "FP16", (7, HEIGHT, WIDTH))),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=REPO / "runs/segmentation/best.pt")
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository")
    ap.add_argument("--version", type=int, default=1)
    args = ap.parse_args()
    net = SegNet()
    net.load_state_dict(torch.load(args.checkpoint, weights_only=False)["model"])
    model = SegNetServing(net).eval()
    example = torch.randint(0, 256, (2, HEIGHT, WIDTH, 3), dtype=torch.uint8)
    model_dir = write_configs(SPEC, args.repository)
    path = model_dir / str(args.version) / "model.onnx"
    names = [t.name for t in SPEC.outputs]
    export_onnx(model, example, path, "image", names)
    diffs = parity(model, example, path, "image", names, PARITY_ATOL)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); parity max |Δ| {diffs} ≤ {PARITY_ATOL}")


if __name__ == "__main__":
    main()
