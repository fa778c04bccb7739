"""Export a segmentation checkpoint to model_repository/<name>/<version>/model.onnx.

    python -m export.export_segmentation --checkpoint runs/segmentation/best.pt [--version 1] [--name NAME]

The architecture is the one the checkpoint's args record (`--arch` of train_segmentation; SegNet for
checkpoints from before that option). The Triton model name defaults to `segmentation` (the served
model) for SegNet and to `segmentation_<arch>` for the others, so exporting a comparison network
(e.g. `runs/segmentation-unet/best.pt` → model_repository/segmentation_unet/1/model.onnx) does not
replace the served one; same I/O, so `training.evaluate_segmentation --model` evaluates either.
Triton loads every model of the repository it is started with: a comparison model left in
model_repository/ is loaded (and holds memory) at the next `make up`; `--repository` puts it elsewhere.

Checks that ONNX Runtime agrees with PyTorch (max |Δprobability| ≤ 1e-3: the outputs are float16
probabilities, whose rounding alone is up to ~5e-4) and writes the CPU and GPU Triton configs.
"""
import argparse
import dataclasses
from pathlib import Path

import torch

from export.onnx_tools import export_onnx, parity
from export.triton_config import ModelSpec, Tensor, write_configs
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training.models.segmentation import SegNetServing
from training.models.segmentation_archs import ARCHITECTURES

PARITY_ATOL = 1e-3

SPEC = ModelSpec(
    name="segmentation",
    inputs=(Tensor("image", "UINT8", (CANVAS_H, CANVAS_W, 3)),),
    outputs=(Tensor("person", "FP16", (2, CANVAS_H, CANVAS_W)), Tensor("fashion", "FP16", (7, CANVAS_H, CANVAS_W))),
)
REPO = Path(__file__).resolve().parent.parent


def load(checkpoint: Path) -> tuple[str, torch.nn.Module]:
    """(architecture name, network with the checkpoint's weights)."""
    ck = torch.load(checkpoint, weights_only=False)
    arch = ck.get("args", {}).get("arch", "segnet")
    net = ARCHITECTURES[arch]()
    net.load_state_dict(ck["model"])
    return arch, net


def main(argv: list[str] | None = None) -> Path:
    """export_command's steps (checkpoint → ONNX + parity → Triton configs), with the architecture
    and the model name chosen per checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=REPO / "runs/segmentation/best.pt")
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository")
    ap.add_argument("--version", type=int, default=1)
    ap.add_argument("--name", help="Triton model name (default: segmentation, or segmentation_<arch> if not SegNet)")
    args = ap.parse_args(argv)
    arch, net = load(args.checkpoint)
    spec = dataclasses.replace(SPEC, name=args.name or ("segmentation" if arch == "segnet" else f"segmentation_{arch}"))
    model = SegNetServing(net).eval()
    examples = {t.name: torch.randint(0, 256, (2, *t.dims), dtype=torch.uint8) for t in spec.inputs}
    path = write_configs(spec, args.repository) / str(args.version) / "model.onnx"
    names = [t.name for t in spec.outputs]
    export_onnx(model, examples, path, names)
    diffs = parity(model, examples, path, names, PARITY_ATOL)
    print(f"wrote {path} ({arch}, {path.stat().st_size / 1e6:.1f} MB); parity max |Δ| {diffs} ≤ {PARITY_ATOL}")
    return path


if __name__ == "__main__":
    main()
