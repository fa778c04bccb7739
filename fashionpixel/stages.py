"""How the pipelines of fashionpixel/ are driven, so that the services and the evaluation commands
run the same code (segmentation, pose, cutout, skin, pose transfer): they pass in how to infer
(fashionpixel/networks.py), where CPU work runs, and how stages are timed. The services run CPU work on
a thread pool and time every stage (services/common/pipeline.py); in-process runs pass `inline` and
`untimed`."""

from contextlib import AbstractContextManager, nullcontext
from typing import Awaitable, Callable

Infer = Callable[..., Awaitable]  # one network on its input(s) (Triton or ONNX Runtime)
Cpu = Callable[..., Awaitable]  # runs fn(*args) off the event loop
Stage = Callable[[str], AbstractContextManager]  # times a named Server-Timing stage


async def inline(fn, *args):
    """`cpu` in-process: simply a call (no event loop to keep free)."""
    return fn(*args)


def untimed(_stage: str) -> AbstractContextManager:
    """`stage` in-process: no Server-Timing to fill."""
    return nullcontext()
