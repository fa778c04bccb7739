"""MediaPipe's selfie-segmentation person probability for image files, as 8-bit PNGs (0-255).

    .venv-teacher/bin/python training/teacher/mediapipe_person.py PHOTO_OR_FOLDER... --out DIR [--landscape]

A teacher and reference only, never served. It runs in its own venv (`make teacher-venv`): mediapipe
needs numpy<2 and protobuf 4.25, which the project's .venv cannot have, so this file imports nothing
from the project. The model ships inside the mediapipe wheel (nothing is downloaded). Each photo's
mask is `<out>/<stem>.png` at the photo's size; photos whose mask exists are skipped (resumable).
"""

import argparse
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def photos(paths: list[Path]) -> list[Path]:
    """The image files named, and those inside the folders named (sorted)."""
    out = []
    for p in paths:
        out += sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES) if p.is_dir() else [p]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", type=Path, nargs="+", help="image files or folders of them")
    ap.add_argument("--out", type=Path, required=True, help="folder for the <stem>.png masks")
    ap.add_argument(
        "--landscape",
        action="store_true",
        help="the landscape model (144x256 input) instead of the general one (256x256)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    every = photos(args.inputs)
    todo = [p for p in every if not (args.out / f"{p.stem}.png").exists()]
    # the legacy solution keeps no state between images (checked: a mask is the same after another photo)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=int(args.landscape)) as model:
        for path in todo:
            probability = model.process(np.asarray(Image.open(path).convert("RGB"))).segmentation_mask
            mask = np.clip(probability * 255 + 0.5, 0, 255).astype(np.uint8)
            tmp = args.out / f".{path.stem}.png"  # written then renamed: a killed run leaves no half mask
            Image.fromarray(mask).save(tmp, format="PNG")
            tmp.replace(args.out / f"{path.stem}.png")
    print(f"{len(todo)} masks written, {len(every) - len(todo)} already there, in {args.out}")


if __name__ == "__main__":
    main()
