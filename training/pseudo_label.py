"""Pseudo-labels for the CCP photos that have none (1005–2098), from a teacher: one or more exported
networks (their probabilities averaged), optionally with test-time flipping, refined with the dense
CRF as the segmentation service refines its answers.

    python -m training.pseudo_label --task segmentation --model A.onnx [B.onnx] [--mirror] --out runs/pseudo-ccp
    python -m training.pseudo_label --task cutout --model model_repository/cutout/1/model.onnx --mirror --out runs/pseudo-garment
    python -m training.pseudo_label --task person-teacher --out runs/teacher-ccp

Writes, at the photo's size, `<out>/<name>_clothes.png` (0..6) and `<name>_person.png` (0/1) in
Fashionista's format for the segmentation task, or `<name>_garment.png` (the groups 0..4) for the
cutout task, and `<out>/teacher.json` (what made them). `train_segmentation --pseudo <out>` and
`train_cutout --pseudo <out>` train on them beside the labelled photos. Resumable: photos already
labelled are skipped.

The person-teacher task (issue 20) asks MediaPipe's selfie-segmentation model (inside the mediapipe
wheel, in .venv-teacher: `make teacher-venv`) instead of our networks and keeps its soft probability,
`<name>_teacher.png` (0-255): `train_segmentation --teacher <out>` distils it into the person head.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image

from export.onnxruntime_session import onnx_session
from fashionpixel.models import CUTOUT, SEGMENTATION
from fashionpixel.segmentation import labels_from_probs, prepare
from training.datasets import PSEUDO_FILES, ccp_unlabelled_samples, pseudo_done_suffix, read_image
from training.mediapipe_teacher import run_teacher
from training.served import predict

TASKS = {"segmentation": (SEGMENTATION, "seg"), "cutout": (CUTOUT, "garment")}  # task → (network, data kind it feeds)


def label(
    task: str, models: list[Path], out: Path, mirror: bool = False, limit: int | None = None, threads: int = 2
) -> int:
    """Label the unlabelled CCP photos into `out`; returns how many were written now."""
    entry, kind = TASKS[task]
    files, done = PSEUDO_FILES[kind], pseudo_done_suffix(kind)
    sessions = [onnx_session(m, threads) for m in models]
    out.mkdir(parents=True, exist_ok=True)
    samples = ccp_unlabelled_samples()[:limit]
    written, start = 0, time.time()
    for i, s in enumerate(samples):
        if (out / f"{s.name}_{done}.png").exists():
            continue
        image = read_image(s)
        canvas, box = prepare(image)
        probs = predict(sessions, canvas, mirror, entry)
        for output, suffix in files.items():
            Image.fromarray(labels_from_probs(image, probs[output], box, crf=True)).save(out / f"{s.name}_{suffix}.png")
        written += 1
        if written % 50 == 0:
            print(f"{i + 1}/{len(samples)} photos, {(time.time() - start) / written:.2f} s each", flush=True)
    write_record(
        out, written, kind, {"task": task, "models": [str(m) for m in models], "mirror": mirror, "post": "crf"}
    )
    return written


def write_record(out: Path, written: int, kind: str, record: dict) -> None:
    """teacher.json (what made the labels), written after every label and only when they changed: its
    time stamp keys the training cache."""
    if written or not (out / "teacher.json").exists():
        photos = len(list(out.glob(f"*_{pseudo_done_suffix(kind)}.png")))
        (out / "teacher.json").write_text(json.dumps(record | {"photos": photos}, indent=1))


def label_with_mediapipe(out: Path, limit: int | None = None) -> int:
    """MediaPipe's soft person probability for the unlabelled CCP photos, as `<out>/<name>_teacher.png`."""
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in ccp_unlabelled_samples()[:limit] if not (out / f"{s.name}_teacher.png").exists()]
    if todo:
        with tempfile.TemporaryDirectory(prefix="teacher-") as tmp:
            run_teacher([s.image for s in todo], Path(tmp))
            for s in todo:
                (Path(tmp) / f"{s.name}.png").replace(out / f"{s.name}_teacher.png")
    write_record(
        out, len(todo), "person", {"task": "person-teacher", "models": ["mediapipe 0.10.21 selfie_segmentation"]}
    )
    return len(todo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--task",
        choices=[*TASKS, "person-teacher"],
        default="segmentation",
        help="which network's labels (person-teacher: MediaPipe's soft person masks)",
    )
    ap.add_argument("--model", type=Path, nargs="+", help="teacher ONNX files (several = their average)")
    ap.add_argument("--mirror", action="store_true", help="teacher also sees the mirrored photo")
    ap.add_argument("--out", type=Path, default=Path("runs/pseudo-ccp"))
    ap.add_argument("--limit", type=int, help="only the first N unlabelled photos")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.task == "person-teacher":
        n = label_with_mediapipe(args.out, args.limit)
    elif not args.model:
        raise SystemExit(f"--task {args.task} needs --model")
    else:
        n = label(args.task, args.model, args.out, args.mirror, args.limit, args.threads)
    print(f"labelled {n} photos into {args.out}", flush=True)


if __name__ == "__main__":
    main()
