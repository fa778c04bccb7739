"""The services' heap: kept while busy, given back once idle.

Freed memory handed back to the OS is paid for again in page faults when the next request touches it
(the kernel zeroes each 4 KB page): about 2 600 faults, 5 ms, for one segment request's probability
maps on this machine, more than the arithmetic on them. glibc hands back every block it got from mmap
(by default those above a threshold it adapts between 128 KB and 32 MB) and the top of the heap beyond
128 KB. So while a service works it keeps what it freed (`keep_freed_memory`), and it gives all of it
back with malloc_trim once it has been idle a while (`trim_when_idle`): a burst of large photos no
longer leaves a service ~100 MB bigger for good (docs/tuning.md). What the trim cannot return, pages
shared with blocks still in use, is 12-22 MB a service more than without keeping (docs/benchmarks.md)."""

import asyncio
import ctypes
import ctypes.util
import time
from concurrent.futures import Executor
from typing import Awaitable, Callable

from services.common.limits import Load

# mallopt's parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit; a 3000×4500 photo's float maps still use mmap


def _libc_function(name: str) -> Callable | None:
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError):  # not glibc (musl has neither malloc_trim nor these mallopt knobs)
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    return _libc_function("malloc_trim")


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for the next request: blocks up to 32 MB come from the heap, and
    free() never shrinks it (only trim_when_idle does). True when glibc took both settings."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or _malloc_trim() is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


async def trim_when_idle(
    load: Load, executor: Executor, idle_s: float, first: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Forever: after `idle_s` without API requests (and once per quiet spell), `first()` (e.g. give
    back what else the service holds for busy times), then malloc_trim(0)."""
    trim = _malloc_trim()
    trimmed_at = 0.0
    while True:
        await asyncio.sleep(idle_s)
        quiet = time.monotonic() - load.last_request >= idle_s
        if load.inflight == 0 and quiet and load.last_request > trimmed_at:
            trimmed_at = time.monotonic()
            if first is not None:
                await first()
            if trim is not None:
                await asyncio.get_running_loop().run_in_executor(executor, trim, 0)
