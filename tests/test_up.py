"""`make up`'s supervisor: starts everything, prints the URLs once ready, stops it all on SIGINT/SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from runtime.stack import Ports, descendants
from services.catalog import SERVICES
from tests.conftest import REPO, default_ctrl_c, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_urls_and_stops_everything(tmp_path, sig):
    ports = Ports.free()
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        TRITON_HTTP_PORT=str(ports.triton_http),
        TRITON_GRPC_PORT=str(ports.triton_grpc),
        TRITON_METRICS_PORT=str(ports.triton_metrics),
        **{s.port_env: str(ports.services[s.name]) for s in SERVICES},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.stack"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_ctrl_c,
    )
    lines = []
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops everything." not in lines[-1:] and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(lines[-30:])
            lines.append(line.strip())
        text = "\n".join(lines)
        for s in SERVICES:
            assert f"http://127.0.0.1:{ports.services[s.name]}" in text
            assert httpx.get(f"http://127.0.0.1:{ports.services[s.name]}/readyz").status_code == 200
        children = descendants(proc.pid)
        assert len(children) >= 1 + len(SERVICES) + 1  # Triton, its model stub(s), the services
        # keep reading: the stack's children log to this pipe while they stop, and a full pipe would block them
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        start = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=15)
        assert time.monotonic() - start < 15
        assert proc.returncode == 0

        def alive():
            return [
                pid
                for pid in children
                if os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
            ]

        wait_for(lambda: not alive(), 5, "the stack's children outlived it")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
