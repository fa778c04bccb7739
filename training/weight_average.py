"""A network between the served one and a continuation of it, by averaging their weights:
θ = (1 − α)·served + α·continued (WiSE-FT, Wortsman et al. 2022: interpolating a fine-tuned network
with the one it started from keeps most of what each knows — here the street photos of the served
network and the shop framings of its continuation).

    python -m training.weight_average --tuned runs/seg-teacher/best.pt --alpha 0.5 --out runs/seg-wise/a50.pt
    python -m training.weight_average --base checkpoints/pose-transfer.pt --tuned checkpoints/pose-transfer-colour.pt \
        --alpha 0.25 --out runs/pt-mix/a0.25.pt     # any network: two checkpoints of one lineage (pose transfer)

Both must share one parameterisation: the continuation started from the served ONNX file
(training/from_onnx.py folds its BatchNorms into the convolutions and freezes them), so the served file
read back the same way lines up with it weight for weight. The output is a checkpoint
`export.export_segmentation --checkpoint` and `train_segmentation --init` read. A `.pt` base is another
checkpoint (e.g. the pose-transfer run both continued from): the two must hold the same weights by name
and shape; the output keeps the tuned run's recorded arguments and is read by its own export and --init.
"""

import argparse
from pathlib import Path

import torch

from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training.from_onnx import freeze_batchnorm, is_frozen, load_onnx_weights
from training.models.segmentation_archs import ARCHITECTURES, recorded_arch


def average(base_onnx: Path, tuned: Path, alpha: float) -> dict:
    ck = torch.load(tuned, weights_only=False)
    run_args = ck.get("args", {})
    if base_onnx.suffix == ".pt":
        return average_checkpoints(torch.load(base_onnx, weights_only=False), ck, alpha) | {
            "args": run_args | {"weight_average": {"base": str(base_onnx), "alpha": alpha}}
        }
    if not is_frozen(run_args):
        raise SystemExit(f"{tuned} did not start from a served ONNX file: its weights do not line up with it")
    net = ARCHITECTURES[recorded_arch(run_args)]()
    load_onnx_weights(net, base_onnx, torch.zeros(1, 3, CANVAS_H, CANVAS_W))
    freeze_batchnorm(net)
    args = run_args | {"frozen_batchnorm": True, "weight_average": {"base": str(base_onnx), "alpha": alpha}}
    return average_checkpoints({"model": net.state_dict()}, ck, alpha) | {"args": args}


def average_checkpoints(base: dict, tuned: dict, alpha: float) -> dict:
    """{"model": (1 − α)·base + α·tuned, weight for weight (integer buffers: the tuned run's), "step"}."""
    a, b = base["model"], tuned["model"]
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit("the two networks' weights do not line up (names or shapes differ)")
    mixed = {
        k: ((1 - alpha) * a[k].float() + alpha * v.float()).to(a[k].dtype) if v.is_floating_point() else v
        for k, v in b.items()
    }
    return {"model": mixed, "step": tuned.get("step")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--base",
        type=Path,
        default=Path("model_repository/segmentation/1/model.onnx"),
        help="the served segmentation file, or a checkpoint (.pt) the tuned run continued",
    )
    ap.add_argument("--tuned", type=Path, required=True, help="a continuation's checkpoint (started from --base)")
    ap.add_argument("--alpha", type=float, required=True, help="0 = the base, 1 = the continuation")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(average(args.base, args.tuned, args.alpha), args.out)
    print(f"wrote {args.out}: {1 - args.alpha:.2f} × {args.base} + {args.alpha:.2f} × {args.tuned}")


if __name__ == "__main__":
    main()
