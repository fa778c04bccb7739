"""How the multi-network pipelines (cutout, skin) are driven, so that the services and the evaluation
commands run the same code: they pass in how to infer, where CPU work runs, and how stages are timed."""
from contextlib import AbstractContextManager
from typing import Awaitable, Callable

import numpy as np

Infer = Callable[[np.ndarray], Awaitable]          # one network on one canvas (Triton or ONNX Runtime)
Cpu = Callable[..., Awaitable]                     # runs fn(*args) off the event loop
Stage = Callable[[str], AbstractContextManager]    # times a named Server-Timing stage
