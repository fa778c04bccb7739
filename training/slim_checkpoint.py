"""A training checkpoint as a small weights-only file to commit, so a later session (a fresh clone)
continues the run: float16 weights, the run's arguments and its step, no optimiser state.

    python -m training.slim_checkpoint runs/seg-shop/best.pt checkpoints/segmentation-shop.pt

Continue with the trainer's `--init checkpoints/segmentation-shop.pt` (a new schedule; the weights
are cast back to float32 on load). A run started from a served ONNX file keeps its BatchNorms frozen:
the file records that (`frozen_batchnorm`), and the trainers freeze them again.
"""

import argparse
from pathlib import Path

import torch

from training.from_onnx import is_frozen


def slim(source: Path, target: Path) -> Path:
    ck = torch.load(source, weights_only=False)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    args = ck.get("args", {}) | {"frozen_batchnorm": is_frozen(ck.get("args", {}))}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": weights, "args": args, "step": ck.get("step"), "history": ck.get("history", [])}, target)
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    args = ap.parse_args()
    path = slim(args.source, args.target)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
