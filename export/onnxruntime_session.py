"""The one way this repository opens an ONNX model in-process: CPU provider, a chosen thread count.

Kept apart from onnx_tools (which needs torch) so that evaluation and `make bench` start quickly.
"""

from pathlib import Path

import onnxruntime as ort


def onnx_session(model: Path | str | bytes, threads: int = 2) -> ort.InferenceSession:
    """`model`: a file, or a serialized model (e.g. a graph changed in memory)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
