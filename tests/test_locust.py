"""A short headless locust run of bench/locustfile.py against the real stack: every endpoint, no failures."""

import csv
import os
import subprocess
import sys

import pytest

from services.catalog import SERVICES
from tests.conftest import ARTIFACTS, REPO

pytestmark = pytest.mark.slow


def test_headless_locust_run_has_no_failures(stack):
    out = ARTIFACTS / "locust"
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {f"{s.name.upper().replace('-', '_')}_URL": stack.service_url(s.name) for s in SERVICES}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO / "bench" / "locustfile.py"),
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "15s",
            "--csv",
            str(out / "run"),
            "--only-summary",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["Name"]: r for r in csv.DictReader(open(out / "run_stats.csv"))}
    names = {"segment fashion", "segment person json", "cutout all", "cutout top mask", "skin", "pose", "pose transfer"}
    assert names <= set(rows), rows.keys()  # every endpoint was exercised
    for name in names:
        assert int(rows[name]["Request Count"]) > 0 and int(rows[name]["Failure Count"]) == 0, rows[name]
