"""MediaPipe's selfie-segmentation model as a teacher (never served): it runs in its own venv
(.venv-teacher, `make teacher-venv`: mediapipe needs numpy<2), so photos go to
training/teacher/mediapipe_person.py in one subprocess and its probability PNGs come back. Used by
training.evaluate_teacher (the reference scores) and training.pseudo_label (soft targets)."""

import subprocess
from pathlib import Path

from training.datasets import REPO

TEACHER_VENV = REPO / ".venv-teacher"
TEACHER_SCRIPT = REPO / "training" / "teacher" / "mediapipe_person.py"


def teacher_python() -> Path:
    """The teacher venv's python; an error saying how to build it when it is missing or half built."""
    if not (TEACHER_VENV / ".installed").exists():
        raise RuntimeError(f"{TEACHER_VENV} is missing (or its install did not finish): run make teacher-venv")
    return TEACHER_VENV / "bin" / "python"


def run_teacher(photos: Path | list[Path], masks: Path, landscape: bool = False) -> None:
    """Every photo in `photos` (a folder or files) through the teacher script, in one subprocess, each
    mask written as `masks/<stem>.png`; its log is shown on failure."""
    inputs = [str(p) for p in photos] if isinstance(photos, list) else [str(photos)]
    command = [str(teacher_python()), str(TEACHER_SCRIPT), *inputs, "--out", str(masks)]
    done = subprocess.run(command + ["--landscape"] * landscape, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the teacher failed ({done.returncode}):\n{done.stderr[-3000:]}")
