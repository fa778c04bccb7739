"""MediaPipe's selfie-segmentation model, a teacher and reference (never served), scored like our person
masks: person mean IoU (background, person) on a validation split, in every shop framing.

    python -m training.evaluate_teacher [--dataset fashionista|ccp] [--framing all] [--limit N] [--landscape] [--json F]

The model runs in its own venv (.venv-teacher, `make teacher-venv`: mediapipe needs numpy<2), so the
framed photos are written as PNGs to a temp folder, training/teacher/mediapipe_person.py labels them
all in one subprocess, and its probability PNGs are read back and thresholded at 0.5.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fashionpixel.labels import PERSON_CLASSES
from training.datasets import ccp_samples, fashionista_samples, label_maps
from training.framing import add_framing_argument, chosen_framings, framed_photos, shop_mean
from training.mediapipe_teacher import run_teacher, teacher_python
from training.metrics import confusion, summarize

SAMPLES = {"fashionista": fashionista_samples, "ccp": ccp_samples}


def evaluate(
    dataset: str = "fashionista",
    limit: int | None = None,
    framings: tuple[str, ...] = ("full",),
    landscape: bool = False,
) -> dict:
    """Person scores per framing (summarize's iou / mean_iou / pixel_accuracy) and the shop mean of mean IoU."""
    teacher_python()  # fail before framing the photos
    samples = [s for s in SAMPLES[dataset]() if s.split == "val"][:limit]

    with tempfile.TemporaryDirectory(prefix="teacher-") as tmp:
        photos, truths, masks = (Path(tmp) / d for d in ("photos", "truths", "masks"))
        photos.mkdir(), truths.mkdir()
        for f in framings:  # file stems are <framing>--<photo>: one folder, one teacher run for all framings
            for s, image, labels, _ in framed_photos(f, samples, label_maps):
                Image.fromarray(image).save(photos / f"{f}--{s.name}.png", compress_level=1)
                Image.fromarray(labels["person"]).save(truths / f"{f}--{s.name}.png", compress_level=1)
        start = time.perf_counter()
        run_teacher(photos, masks, landscape)
        seconds = time.perf_counter() - start
        per = {}
        for f in framings:
            cm = np.zeros((2, 2), np.int64)
            for s in samples:
                truth = np.asarray(Image.open(truths / f"{f}--{s.name}.png"))
                person = np.asarray(Image.open(masks / f"{f}--{s.name}.png")) >= 128  # p >= 0.5 (p·255 rounded)
                cm += confusion(person, truth, 2)
            per[f] = summarize(cm, PERSON_CLASSES)
    return {
        "dataset": dataset,
        "split": "val",
        "images": len(samples),
        "model": f"mediapipe 0.10.21 selfie_segmentation{'_landscape' if landscape else ''}",
        "threshold": 0.5,
        "teacher_seconds": round(seconds, 1),
        "framings": per,
        "shop": shop_mean({f: r["mean_iou"] for f, r in per.items()}),
    }


def print_report(report: dict) -> None:
    print(
        f"{report['model']} on {report['dataset']} {report['split']}, {report['images']} photos "
        f"({report['teacher_seconds']} s in the teacher)"
    )
    print(f"{'framing':10} {'mean IoU':>9} {'person IoU':>11} {'pixel acc':>10}")
    for name, r in report["framings"].items():
        print(f"{name:10} {r['mean_iou']:9.4f} {r['iou']['person']:11.4f} {r['pixel_accuracy']:10.4f}")
    if report["shop"] is not None:
        print(f"{'shop':10} {report['shop']:9.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(SAMPLES), default="fashionista")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--landscape", action="store_true", help="the landscape model instead of the general one")
    add_framing_argument(ap)
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    try:
        report = evaluate(args.dataset, args.limit, chosen_framings(args.framing), args.landscape)
    except RuntimeError as e:
        raise SystemExit(str(e))
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
