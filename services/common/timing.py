"""Per-request stage timings, reported in the Server-Timing header and as metrics."""

import time
from contextlib import contextmanager


class Timings:
    """Milliseconds per stage. A stage entered again while it is still in progress (network calls
    awaited side by side, such as the pose look beside the first segmentation pass) counts the wall
    time it was busy once, not once per call, so the stages of a request add up to at most its time."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._open: dict[str, tuple[int, float]] = {}  # stage → (calls in progress, busy since)

    @contextmanager
    def stage(self, name: str):
        calls, since = self._open.get(name, (0, 0.0))
        self._open[name] = (calls + 1, since if calls else time.perf_counter())
        try:
            yield
        finally:
            calls, since = self._open.pop(name)
            if calls > 1:
                self._open[name] = (calls - 1, since)
            else:
                self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - since) * 1000

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.1f}" for name, ms in self.ms.items())
