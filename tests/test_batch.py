"""tools/batch.py on a folder of real photos against the real segmentation service: results, failures
reported without stopping, resume after deletion and after a real interruption (SIGINT)."""

import csv
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, default_ctrl_c
from tools.batch import main

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.fixture
def folder(tmp_path, data_dir):
    from training.datasets import fashionista_samples

    src = tmp_path / "photos"
    src.mkdir()
    for s in [s for s in fashionista_samples() if s.split == "val"][:10]:
        shutil.copy(s.image, src / s.image.name)
    (src / "broken.jpg").write_bytes(b"this is not a photo")
    (src / "notes.txt").write_text("not a photo either, and not even tried")
    return src


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_results_failures_and_resume(stack, folder, tmp_path):
    out = tmp_path / "out"
    argv = [
        str(folder),
        str(out),
        "--url",
        stack.service_url("segmentation") + "/v1/segment",
        "--param",
        "task=person",
        "--param",
        "crf=false",
        "-c",
        "3",
        "--quiet",
    ]
    assert main(argv) == 1  # one photo failed, the rest went on
    report = rows(out / "report.csv")
    assert len(report) == 11
    failed = [r for r in report if r["status"] == "failed"]
    assert [(r["file"], r["http_status"]) for r in failed] == [("broken.jpg", "415")]
    assert failed[0]["detail"]  # the service's problem detail
    assert len(list(out.glob("*.png"))) == 10 and all(float(r["ms"]) > 0 for r in report)
    deleted = sorted(out.glob("*.png"))[:2]
    for p in deleted:
        p.unlink()
    assert main(argv) == 1
    again = rows(out / "report.csv")[11:]  # appended: only what was missing, and the failure
    assert sorted(r["file"] for r in again if r["status"] == "ok") == sorted(f"{p.stem}.jpg" for p in deleted)
    assert len(again) == 3 and len(list(out.glob("*.png"))) == 10


def test_interrupted_run_resumes_without_redoing(stack, folder, tmp_path):
    (folder / "broken.jpg").unlink()
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "tools.batch",
        str(folder),
        str(out),
        "--url",
        stack.service_url("segmentation") + "/v1/segment",
        "-c",
        "1",
        "--quiet",
        "--param",
        "superpixels=true",
    ]  # CRF and superpixels: slow enough to interrupt midway
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = {p.name for p in out.glob("*.png")}
    assert 2 <= len(first) < 10 and not list(out.glob(".*.part"))  # only whole results
    done_before = len(rows(out / "report.csv"))
    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    second = rows(out / "report.csv")[done_before:]
    assert {r["file"].rsplit(".", 1)[0] + ".png" for r in second}.isdisjoint(first)  # nothing redone
    assert len(list(out.glob("*.png"))) == 10
