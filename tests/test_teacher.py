"""MediaPipe's selfie model as a reference (training/evaluate_teacher.py) and a teacher (training/pseudo_label.py). It runs in .venv-teacher,
which `make test` builds (`make teacher-venv`); run by hand without it, the scoring test skips (in CI it
fails), and the command says how to build it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, TINY_RUN
from training import mediapipe_teacher
from training.evaluate_teacher import evaluate
from training.mediapipe_teacher import TEACHER_VENV


def needs_teacher_venv():
    if not (TEACHER_VENV / ".installed").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{TEACHER_VENV} missing: make test builds it (make teacher-venv)")
        pytest.skip(f"needs {TEACHER_VENV}: make teacher-venv")


def test_a_missing_teacher_venv_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(mediapipe_teacher, "TEACHER_VENV", tmp_path / ".venv-teacher")
    with pytest.raises(RuntimeError, match="run make teacher-venv"):
        evaluate(limit=1)


@pytest.mark.data
@pytest.mark.slow
def test_teacher_person_masks_in_two_framings(data_dir):
    needs_teacher_venv()
    report = evaluate("fashionista", limit=3, framings=("full", "waist-up"))
    assert report["images"] == 3
    assert list(report["framings"]) == ["full", "waist-up"]
    for name, scores in report["framings"].items():
        assert scores["mean_iou"] > 0.8 and scores["iou"]["person"] > 0.8, name
    assert report["shop"] == pytest.approx(report["framings"]["waist-up"]["mean_iou"])  # the one shop framing


@pytest.mark.data
@pytest.mark.slow
def test_teacher_soft_masks_are_written_resumed_and_distilled(data_dir, tmp_path):
    needs_teacher_venv()
    out = tmp_path / "teacher"

    def run(*args):
        done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    label = ("training.pseudo_label", "--task", "person-teacher", "--out", str(out), "--limit", "3")
    assert "labelled 3 photos" in run(*label)
    for mask in sorted(out.glob("*_teacher.png")):
        name = mask.name[: -len("_teacher.png")]
        assert not (data_dir / "ccp" / "labels" / f"{name}.png").exists()  # only photos without labels
        soft = np.asarray(Image.open(mask))
        assert soft.shape == Image.open(data_dir / "ccp" / "photos" / f"{name}.jpg").size[::-1]
        assert 0.05 < (soft >= 128).mean() < 0.9  # a person, not the whole photo
        assert ((soft > 10) & (soft < 245)).any()  # soft: the teacher's probability, not a 0/1 mask
    assert json.loads((out / "teacher.json").read_text())["photos"] == 3
    assert "labelled 0 photos" in run(*label)  # resumed
    trained = run(
        "training.train_segmentation",
        "--out",
        str(tmp_path / "run"),
        "--augment",
        "shop",
        "--teacher",
        str(out),
        "--teacher-batch",
        "2",
        "--limit",
        "3",
        *TINY_RUN,
    )
    assert "teacher-labelled images 3" in trained
    assert "done; best validation framed_miou" in trained  # validated in the shop framings
