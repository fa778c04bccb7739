"""Fixtures: a real Triton and the real services on free ports, and the shared data.

Tests marked `data` read ../shared/data (or $DATA_DIR). In CI (CI=true) its absence is a failure;
on a user's fresh clone without it, those tests are skipped with a message saying so.
"""

import os
import signal
import time
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import pytest

from runtime.stack import Ports, Stack, free_port
from services.catalog import SERVICES
from training.datasets import DATA_DIR

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


# A training command's smallest run (with --limit): two steps of two photos, validated once
TINY_RUN = ("--batch", "2", "--steps", "2", "--val-every", "2")


def default_ctrl_c() -> None:
    """preexec_fn for a child the test interrupts with SIGINT: a shell that starts jobs without job
    control (e.g. `cmd &` in a script) makes them ignore SIGINT, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: Callable[[], object], seconds: float, failure: str, every: float = 0.05) -> None:
    """Poll `condition` until it holds (instead of sleeping a fixed time); fail with `failure` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(every)


def require_data() -> Path:
    if (DATA_DIR / "fashionista" / "images").is_dir():
        return DATA_DIR
    if os.environ.get("CI"):
        pytest.fail(f"shared data missing at {DATA_DIR}: CI must have ../shared/data")
    pytest.skip(f"needs the shared data at {DATA_DIR} (set DATA_DIR); absent on this clone")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require_data()


def start_stack(name: str, tmp_home: Path, **env) -> Stack:
    # onnxruntime and Triton's stub write caches under $HOME: keep them in a temp folder.
    stack = Stack(Ports.free(), log_dir=ARTIFACTS / "logs" / name, env={"HOME": str(tmp_home)} | env)
    try:
        stack.start(timeout=180)
    except Exception:
        stack.stop()
        raise
    return stack


def extra_segmentation_service(stack: Stack, home: Path, name: str, **env) -> Stack:
    """One more segmentation service on `stack`'s Triton, configured by `env`; stop() it when done."""
    ports = Ports(
        stack.ports.triton_http,
        stack.ports.triton_grpc,
        stack.ports.triton_metrics,
        {s.name: free_port() for s in SERVICES},
    )
    other = Stack(ports, log_dir=ARTIFACTS / "logs" / name, env={"HOME": str(home)} | env)
    info = SERVICES[0]
    other.start_service(info)
    try:
        other.wait_until(other.service_url(info.name) + "/readyz", 60, other.services[info.name])
    except Exception:
        other.stop()
        raise
    return other


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    s = start_stack("main", tmp_path_factory.mktemp("home"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def seg(stack) -> httpx.Client:
    with httpx.Client(base_url=stack.service_url("segmentation"), timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real validation photo when the data is here, else a synthetic one."""
    from tests.images import synthetic_photo

    if (DATA_DIR / "fashionista" / "images" / "0001.jpg").exists():
        from PIL import Image

        return np.asarray(Image.open(DATA_DIR / "fashionista" / "images" / "0001.jpg").convert("RGB"))
    return synthetic_photo()
