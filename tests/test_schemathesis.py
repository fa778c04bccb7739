"""Property-based fuzzing of every service's OpenAPI with schemathesis: no request it generates — random
bytes as images, wrong types, out-of-range and missing parameters — may produce a 5xx."""

import subprocess
import sys

import pytest

from services.catalog import SERVICES
from tests.conftest import ARTIFACTS, REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_no_server_errors(stack, name):
    url = stack.service_url(name)
    report = ARTIFACTS / "schemathesis" / f"{name}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--url",
            url,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--request-timeout",
            "60",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--no-color",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
