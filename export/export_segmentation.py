"""Export a segmentation checkpoint to model_repository/<name>/<version>/model.onnx.

    python -m export.export_segmentation --checkpoint runs/segmentation/best.pt [--version 1] [--name NAME]
    python -m export.export_segmentation --checkpoint runs/seg-crops/best.pt --name segmentation_crops

The architecture is the one the checkpoint's args record (`--arch` of train_segmentation; SegNet for
checkpoints from before that option). The Triton model name defaults to `segmentation` (the served
model) for SegNet and to `segmentation_<arch>` for the others, so exporting a comparison network
(e.g. `runs/segmentation-unet/best.pt` → model_repository/segmentation_unet/1/model.onnx) does not
replace the served one; same I/O, so `training.evaluate_segmentation --model` evaluates either.
Triton loads every model of the repository it is started with: a comparison model left in
model_repository/ is loaded (and holds memory) at the next `make up`; `--repository` puts it elsewhere.

Checks that ONNX Runtime agrees with PyTorch (max |Δprobability| ≤ 1e-3: the outputs are float16
probabilities, whose rounding alone is up to ~5e-4) and writes the CPU and GPU Triton configs.

The file has the probabilities only. The served general network (`segmentation`) also answers with its
routing head (export/routing_head.py), which reads this network's encoder: after exporting it, run
`python -m training.fit_routing`, which fits the head to the new network and writes it and the
configs (until then the file lacks the registry's `cut` output, and tests/test_model_registry.py says so).
"""

import dataclasses
from pathlib import Path

import torch

from export.onnx_tools import PROBABILITY_ATOL, export_arguments, export_model
from export.triton_config import SPECS
from fashionpixel.models import SEGMENTATION, SEGMENTATION_PROBABILITIES
from training.models.segmentation import SegNetServing
from training.models.segmentation_archs import ARCHITECTURES, recorded_arch

PARITY_ATOL = PROBABILITY_ATOL


def load(checkpoint: Path) -> tuple[str, torch.nn.Module]:
    """(architecture name, network with the checkpoint's weights)."""
    ck = torch.load(checkpoint, weights_only=False)
    arch = recorded_arch(ck.get("args", {}))
    net = ARCHITECTURES[arch]()
    net.load_state_dict(ck["model"])
    return arch, net


def main(argv: list[str] | None = None) -> Path:
    """The shared export steps, with the architecture and the model name chosen per checkpoint."""
    ap = export_arguments(__doc__, Path("runs/segmentation/best.pt"))
    ap.add_argument("--name", help="Triton model name (default: segmentation, or segmentation_<arch> if not SegNet)")
    args = ap.parse_args(argv)
    arch, net = load(args.checkpoint)
    name = args.name or (SEGMENTATION.name if arch == "segnet" else f"segmentation_{arch}")
    # a served name (segmentation, segmentation_crops) has its spec; a candidate is the served model
    # under another name: the same probabilities, so every evaluation takes it
    spec = SPECS.get(name) or SPECS[SEGMENTATION.name]
    model = dataclasses.replace(spec.model, name=name, outputs=SEGMENTATION_PROBABILITIES)
    print(f"architecture {arch}")
    path = export_model(
        dataclasses.replace(spec, model=model), SegNetServing(net), args.repository, args.version, PARITY_ATOL
    )
    if name == SEGMENTATION.name:
        print("the served general network needs its routing head: python -m training.fit_routing")
    return path


if __name__ == "__main__":
    main()
