"""How the pipelines of fashionpixel/ are driven, so that the services and the evaluation commands
run the same code (segmentation, pose, cutout, skin, pose transfer): they pass in how to infer
(fashionpixel/networks.py), where CPU work runs, and how stages are timed."""
from contextlib import AbstractContextManager
from typing import Awaitable, Callable

Infer = Callable[..., Awaitable]                   # one network on its input(s) (Triton or ONNX Runtime)
Cpu = Callable[..., Awaitable]                     # runs fn(*args) off the event loop
Stage = Callable[[str], AbstractContextManager]    # times a named Server-Timing stage
