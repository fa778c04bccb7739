"""ONNX export with a dynamic batch axis, and the PyTorch-vs-ONNX-Runtime parity check."""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path,
                input_name: str, output_names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    axes = {input_name: {0: "batch"}} | {name: {0: "batch"} for name in output_names}
    torch.onnx.export(model, (example,), str(path), input_names=[input_name], output_names=output_names,
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))


def parity(model: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
           output_names: list[str], atol: float) -> dict[str, float]:
    """Max absolute difference per output between PyTorch and ONNX Runtime; raises above `atol`."""
    with torch.no_grad():
        expected = model(example)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(output_names, {input_name: example.numpy()})
    diffs = {name: float(np.abs(e.float().numpy() - g.astype(np.float32)).max())
             for name, e, g in zip(output_names, expected, got)}
    worst = max(diffs.values())
    if worst > atol:
        raise SystemExit(f"parity failed: {diffs} > {atol}")
    return diffs
