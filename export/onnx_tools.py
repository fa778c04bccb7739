"""ONNX export with a dynamic batch axis, and the PyTorch-vs-ONNX-Runtime parity check."""

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.triton_config import ModelSpec, write_configs

# Parity of networks whose outputs are float16 probabilities (segmentation, cutout): float16 rounding
# alone is up to ~5e-4.
PROBABILITY_ATOL = 1e-3


def export_onnx(model: torch.nn.Module, examples: dict[str, torch.Tensor], path: Path, output_names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    axes = {name: {0: "batch"} for name in [*examples, *output_names]}
    torch.onnx.export(
        model,
        tuple(examples.values()),
        str(path),
        input_names=list(examples),
        output_names=output_names,
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(path)))


def parity(
    model: torch.nn.Module, examples: dict[str, torch.Tensor], path: Path, output_names: list[str], atol: float
) -> dict[str, float]:
    """Max absolute difference per output between PyTorch and ONNX Runtime; raises above `atol`."""
    with torch.no_grad():
        expected = model(*examples.values())
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(output_names, {name: t.numpy() for name, t in examples.items()})
    diffs = {
        name: float(np.abs(e.float().numpy() - g.astype(np.float32)).max())
        for name, e, g in zip(output_names, expected, got)
    }
    worst = max(diffs.values())
    if worst > atol:
        raise SystemExit(f"parity failed: {diffs} > {atol}")
    return diffs


def export_model(spec: ModelSpec, net: torch.nn.Module, repository: Path, version: int, atol: float) -> Path:
    """A serving module (uint8 inputs, as the registry model's tensors) → <repository>/<name>/<version>/model.onnx
    (+ parity) and its Triton configs."""
    net = net.eval()
    examples = {t.name: torch.randint(0, 256, (2, *t.dims), dtype=torch.uint8) for t in spec.model.inputs}
    write_configs(spec, repository)
    path = spec.model.onnx_path(repository, version)
    names = list(spec.model.output_names)
    export_onnx(net, examples, path, names)
    diffs = parity(net, examples, path, names, atol)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); parity max |Δ| {diffs} ≤ {atol}")
    return path


def export_arguments(doc: str, default_checkpoint: Path) -> argparse.ArgumentParser:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=repo / default_checkpoint)
    ap.add_argument("--repository", type=Path, default=repo / "model_repository")
    ap.add_argument("--version", type=int, default=1)
    return ap


def export_command(
    doc: str,
    spec: ModelSpec,
    build: Callable[[dict], torch.nn.Module],
    serving: Callable,
    default_checkpoint: Path,
    atol: float,
    also: tuple[ModelSpec, ...] = (),
) -> None:
    """The export command shared by every model: checkpoint → ONNX (+ parity) → Triton configs.
    `build` gets the training arguments the checkpoint recorded (e.g. its architecture). `also`: other
    served models of the same network and tensors (a crop specialist), chosen with --name."""
    ap = export_arguments(doc, default_checkpoint)
    by_name = {s.model.name: s for s in (spec, *also)}
    ap.add_argument("--name", choices=list(by_name), default=spec.model.name, help="the Triton model to write")
    args = ap.parse_args()
    checkpoint = torch.load(args.checkpoint, weights_only=False)
    net = build(checkpoint.get("args", {}))
    net.load_state_dict(checkpoint["model"])
    export_model(by_name[args.name], serving(net), args.repository, args.version, atol)
