"""MediaPipe's selfie model as a reference (training/evaluate_teacher.py). It runs in .venv-teacher,
which `make test` builds (`make teacher-venv`); run by hand without it, the scoring test skips (in CI it
fails), and the command says how to build it."""

import os

import pytest

from training import evaluate_teacher
from training.evaluate_teacher import TEACHER_VENV, evaluate


def test_a_missing_teacher_venv_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(evaluate_teacher, "TEACHER_VENV", tmp_path / ".venv-teacher")
    with pytest.raises(RuntimeError, match="run make teacher-venv"):
        evaluate(limit=1)


@pytest.mark.data
@pytest.mark.slow
def test_teacher_person_masks_in_two_framings(data_dir):
    if not (TEACHER_VENV / ".installed").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{TEACHER_VENV} missing: make test builds it (make teacher-venv)")
        pytest.skip(f"needs {TEACHER_VENV}: make teacher-venv")
    report = evaluate("fashionista", limit=3, framings=("full", "waist-up"))
    assert report["images"] == 3
    assert list(report["framings"]) == ["full", "waist-up"]
    for name, scores in report["framings"].items():
        assert scores["mean_iou"] > 0.8 and scores["iou"]["person"] > 0.8, name
    assert report["shop"] == pytest.approx(report["framings"]["waist-up"]["mean_iou"])  # the one shop framing
