"""Closed-form alpha matting (pymatting) in a worker process that exits when idle.

pymatting's functions are compiled by numba: importing them maps LLVM and the compiled code, ~150 MB
that a process never gives back (the cutout service sat at ~285 MB instead of ~130 after one
`refine=matting` request; docs/benchmarks.md). Only that option needs it, so the import lives in a
worker process started on the first matting request and retired after IDLE_S without one. The price:
the first matting request after a quiet spell waits for the worker to start (~3 s with numba's cache
warm, which `make setup` fills).
"""

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

IDLE_S = 120.0


def _solve(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    from pymatting import estimate_alpha_cf

    return estimate_alpha_cf(image, trimap)


class _Worker:
    """One worker process, shared by the threads that ask for matting; started on demand."""

    def __init__(self, idle_s: float):
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._busy = 0
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def solve(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the services run threads (a fork copies their locks mid-use)
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
            self._busy += 1
        try:
            return pool.submit(_solve, image, trimap).result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): the next request starts another
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise
        finally:
            with self._lock:
                self._busy -= 1
                self._last = time.monotonic()
                if self._timer is not None:  # one idle timer, restarted by each request
                    self._timer.cancel()
                self._timer = threading.Timer(self.idle_s, self.retire_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def retire_if_idle(self) -> None:
        with self._lock:
            if self._pool is None or self._busy or time.monotonic() - self._last < self.idle_s:
                return
            pool, self._pool = self._pool, None
        pool.shutdown(wait=True)

    def shutdown(self) -> None:
        """Stop the worker now (the service is stopping). uvicorn ends by re-raising its signal, so
        neither atexit nor multiprocessing's finalizers run: without this the worker's queues left their
        named semaphores in /dev/shm, five per stop."""
        with self._lock:
            pool, self._pool = self._pool, None
            if self._timer is not None:
                self._timer.cancel()
        if pool is not None:
            pool.shutdown(wait=True)

    def pid(self) -> int | None:
        """The worker process's id while one runs (for tests)."""
        with self._lock:
            procs = getattr(self._pool, "_processes", None) or {}
            return next(iter(procs), None)


WORKER = _Worker(IDLE_S)


def estimate_alpha_cf(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """pymatting.estimate_alpha_cf(image, trimap), computed in the worker process."""
    return WORKER.solve(image, trimap)
