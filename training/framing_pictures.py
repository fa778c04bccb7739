"""Before / after pictures for the model cards: one validation photo in every framing, with what two
networks make of it, through the service's pipeline (segmentation: default CRF; cutout: defaults).

    python -m training.framing_pictures --task segmentation --before OLD.onnx --after NEW.onnx \
        --out docs/models/img/segmentation_framings.png [--photo 0] [--crops SPECIALIST.onnx] [--locate]

Rows are the framings; columns: the framed photo, its labels (pose: the teacher's keypoints), the
`before` result, the `after` result. Both run the service's pipeline with the focus pass; `after` also
with the crop specialist `--crops` (segmentation, pose) and, with `--locate`, the served pose network
finding a small person (segmentation, cutout), as the service runs them.
"""

import argparse
import asyncio
from pathlib import Path

import cv2
import numpy as np

from fashionpixel import cutout
from fashionpixel.keypoints import estimate
from fashionpixel.labels import FASHION_PALETTE
from fashionpixel.models import CUTOUT, POSE, POSE_CROPS, SEGMENTATION, SEGMENTATION_CROPS
from fashionpixel.networks import infer_with
from fashionpixel.pose import draw_pose
from fashionpixel.segmentation import segment
from fashionpixel.stages import inline, untimed
from training.datasets import ccp_samples, fashionista_samples, label_maps, read_garments
from training.framing import FRAMINGS, framed_photos
from training.served import onnx_network

GARMENT_PALETTE = np.array([[0, 0, 0], [40, 120, 255], [30, 180, 80], [220, 40, 160], [255, 220, 0]], np.uint8)


def segmentation_view(nets: dict, image: np.ndarray) -> np.ndarray:
    """The fashion parsing drawn in its palette; `nets`: infer (the `fashion` output), infer_crops, pose."""
    labels = segment(image, crf=True, min_region=0, superpixels=False, cpu=inline, stage=untimed, **nets)
    return FASHION_PALETTE[asyncio.run(labels)]


def cutout_view(nets: dict, image: np.ndarray) -> np.ndarray:
    """The garments on a checkerboard; `nets`: infer (the cutout network), pose."""
    nets = {k: v for k, v in nets.items() if k != "infer_crops"}
    alpha = asyncio.run(cutout.matte(image, "all", focus=True, refine="guided", cpu=inline, stage=untimed, **nets))[
        ..., None
    ]
    h, w = alpha.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    board = np.where(((yy // 16 + xx // 16) % 2)[..., None] == 0, 255, 200).astype(np.float32)
    return (image * alpha + board * (1 - alpha)).astype(np.uint8)


def limbs_over(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The OpenPose limbs drawn over a dimmed photo."""
    drawn = draw_pose(keypoints, image.shape[1], image.shape[0])
    return np.where(drawn.any(2, keepdims=True), drawn, image // 2 + 64).astype(np.uint8)


def pose_view(nets: dict, image: np.ndarray) -> np.ndarray:
    """The estimated keypoints (the service's pipeline and threshold) as limbs over the photo."""
    nets = {k: v for k, v in nets.items() if k != "pose"}
    return limbs_over(image, asyncio.run(estimate(image, cpu=inline, stage=untimed, **nets)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["segmentation", "cutout", "pose"], required=True)
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--photo", type=int, default=0, help="which validation photo")
    ap.add_argument("--crops", type=Path, help="`after` with this crop specialist (segmentation, pose)")
    ap.add_argument("--locate", action="store_true", help="`after` with the served pose network's search")
    args = ap.parse_args()
    if args.task == "segmentation":
        samples, view, model, outputs, read = (
            fashionista_samples(),
            segmentation_view,
            SEGMENTATION,
            ("fashion",),
            label_maps,
        )

        def truth(image, labels, _):
            return FASHION_PALETTE[labels["fashion"]]
    elif args.task == "cutout":
        samples, view, model, outputs = ccp_samples(), cutout_view, CUTOUT, ()

        def read(s):
            return {"garment": read_garments(s), "person": label_maps(s)["person"]}

        def truth(image, labels, _):
            return GARMENT_PALETTE[labels["garment"]]
    else:
        samples, view, model, outputs, read = fashionista_samples(), pose_view, POSE, (), label_maps

        def truth(image, _, keypoints):  # the teacher's keypoints
            return limbs_over(image, keypoints)

    val = [s for s in samples if s.split == "val"]
    pair = [val[args.photo], val[(args.photo + 1) % len(val)]]  # the second lends the small framing its backdrop
    crops_model = {SEGMENTATION: SEGMENTATION_CROPS, POSE: POSE_CROPS}.get(model)
    files = {POSE: POSE.onnx_path(Path("model_repository")), model: args.after} | (
        {crops_model: args.crops} if args.crops else {}
    )
    served = onnx_network(files, 2)
    before = {"infer": infer_with(onnx_network({model: args.before}, 2), model, *outputs)}
    after = {"infer": infer_with(served, model, *outputs)}
    after |= {"infer_crops": infer_with(served, crops_model, *outputs)} if args.crops else {}
    after |= {"pose": infer_with(served, POSE)} if args.locate or args.crops else {}
    rows = []
    for name in FRAMINGS:
        _, image, labels, keypoints = next(iter(framed_photos(name, pair, read)))
        tiles = [image, truth(image, labels, keypoints), view(before, image), view(after, image)]
        row = np.hstack(
            [cv2.resize(t, (t.shape[1] * 240 // t.shape[0], 240), interpolation=cv2.INTER_AREA) for t in tiles]
        )
        cv2.putText(row, name, (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 0, 0), 2)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
