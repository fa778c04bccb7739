"""Give the heap back after a burst. glibc keeps freed memory for reuse (a burst of large photos left
each service ~100 MB bigger for good); handing it back on every free instead (a fixed mmap threshold)
cost the CRF path +60-90 ms (docs/tuning.md). So the service trims once it has been idle a while."""

import asyncio
import ctypes
import ctypes.util
import time
from concurrent.futures import Executor
from typing import Callable

from services.common.limits import Load


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


async def trim_when_idle(load: Load, executor: Executor, idle_s: float) -> None:
    """Forever: after `idle_s` without API requests (and once per quiet spell), malloc_trim(0)."""
    trim = _malloc_trim()
    if trim is None:
        return
    trimmed_at = 0.0
    while True:
        await asyncio.sleep(idle_s)
        quiet = time.monotonic() - load.last_request >= idle_s
        if load.inflight == 0 and quiet and load.last_request > trimmed_at:
            trimmed_at = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(executor, trim, 0)
