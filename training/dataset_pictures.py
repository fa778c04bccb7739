"""Build the skin-generation or pose-transfer dataset (cached in .cache/), say how big it is, and
optionally draw four validation examples (the pictures in docs/models/skin.md and pose-transfer.md).

    python -m training.dataset_pictures skin [--pictures docs/models/img/skin_inputs.png]
    python -m training.dataset_pictures pose-transfer [--pictures docs/models/img/pose_transfer_inputs.png]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from training import pose_transfer_data, skin_data
from training.skin_data import grid


def skin(pictures: Path | None) -> None:
    for split in ("train", "val"):
        data = skin_data.build(split)
        share = (data["inputs"][..., 6] > 0).mean()
        print(f"{split}: {len(data['inputs'])} examples, mean skin-region share {share:.3f}", flush=True)
    if pictures:  # input photo | pose lines | skin region | target
        val = skin_data.build("val")
        rows = [[x[..., :3], x[..., 3:6], x[..., 6], y] for x, y in zip(val["inputs"][:4], val["targets"][:4])]
        save(pictures, grid(rows))


def pose_transfer(pictures: Path | None) -> None:
    for split in ("train", "val"):
        print(f"{split}: {len(pose_transfer_data.build(split)['images'])} photos", flush=True)
    if pictures:  # mirror pairs: source | target pose | part-wise warp | target
        x, y, _ = pose_transfer_data.batch(
            pose_transfer_data.build("val"), range(4), np.random.default_rng(0), "mirror"
        )
        save(pictures, grid([[x["source"][j], x["pose"][j].max(2), x["warped"][j][..., :3], y[j]] for j in range(4)]))


def save(path: Path, picture: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["skin", "pose-transfer"])
    ap.add_argument("--pictures", type=Path, help="draw 4 validation examples into this file")
    args = ap.parse_args()
    (skin if args.dataset == "skin" else pose_transfer)(args.pictures)


if __name__ == "__main__":
    main()
