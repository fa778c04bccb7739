"""The one way this repository opens an ONNX model in-process: CPU provider, a chosen thread count.

Kept apart from onnx_tools (which needs torch) so that evaluation and `make bench` start quickly.
"""

from pathlib import Path

import onnxruntime as ort


def onnx_session(path: Path | str, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
