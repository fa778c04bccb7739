"""The perf_analyzer recipe (bench/perf_analyzer.py) runs against the real Triton and measures something."""

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_perf_analyzer_measures_the_pose_model(stack, protocol):
    port = stack.ports.triton_grpc if protocol == "grpc" else stack.ports.triton_http
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.perf_analyzer",
            "pose",
            "--protocol",
            protocol,
            "--url",
            f"127.0.0.1:{port}",
            "--concurrency",
            "1:1:1",
            "--",
            "--measurement-interval",
            "2000",
            "--max-trials",
            "4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    throughput = re.search(r"Concurrency: 1, throughput: ([\d.]+) infer/sec, latency (\d+) usec", result.stdout)
    assert throughput and float(throughput.group(1)) > 0, result.stdout[-2000:]
