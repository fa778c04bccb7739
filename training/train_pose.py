"""Train the 18-keypoint heatmap network on the teacher keypoints of Fashionista and CCP.

    python -m training.train_pose --out runs/pose --steps 3000
    python -m training.train_pose --out runs/pose-shop --init model_repository/pose/1/model.onnx --augment shop ...

Resumable (re-run the same command). Mirroring swaps the person's left and right keypoints, so a
flipped photo keeps correct labels. Keeps the best validation PCK@0.1 as <out>/best.pt.

`--augment shop` (issue 20): 70 % of each batch are the photos with person labels in random shop
framings (training/framing.py: zoom crops from the head or the chin down to the hips or the feet, small
people on backdrops, padding, replaced backgrounds), keypoints moved with them; the rest the usual
augmentation of every photo. Validation then scores full, waist-up, square and small framings, and the
best checkpoint is the best mean PCK over them. `--init` takes the served .onnx file (BatchNorms
folded and frozen, training/from_onnx.py).
"""

from pathlib import Path

import numpy as np
import torch

from fashionpixel.keypoints import CANVAS_H, CANVAS_W, SCORE_THRESHOLD
from fashionpixel.letterbox import letterbox, points_to_canvas
from fashionpixel.pose import FLIP_INDEX, decode_heatmaps
from training import loop
from training.augment import framed_batch, photometric, random_affine, warp_image
from training.datasets import build_cache as labelled_cache
from training.datasets import cached, ccp_samples, fashionista_samples, keypoint_samples, read_image
from training.framing import FRAMED, SHOP_CACHE, framed_scores, framed_sets
from training.from_onnx import freeze_batchnorm, load_onnx_weights
from training.metrics import pck
from training.models.blocks import to_tensor
from training.models.pose import STRIDE, PoseNet

WIDTH, HEIGHT = CANVAS_W, CANVAS_H
SIGMA = 1.5  # heatmap Gaussian, in heatmap cells


def build_cache(samples) -> dict[str, np.ndarray]:
    """Letterboxed images and keypoints in canvas pixels (-1 = missing), cached in .cache/."""

    def make():
        images, points = [], []
        for s, k in samples:
            photo = read_image(s)
            img, box = letterbox(photo, WIDTH, HEIGHT)
            images.append(img)
            points.append(points_to_canvas(k, box, photo.shape[1]))
        return {"images": np.stack(images), "keypoints": np.stack(points).astype(np.float32)}

    return cached(f"pose_{WIDTH}x{HEIGHT}", [s for s, _ in samples], make)


def heatmaps(keypoints: np.ndarray) -> np.ndarray:
    """18×2 canvas keypoints → 18×(H/4)×(W/4) Gaussian targets (all zero for a missing keypoint)."""
    h, w = HEIGHT // STRIDE, WIDTH // STRIDE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((18, h, w), np.float32)
    for j, (x, y) in enumerate(keypoints):
        if x < 0:
            continue
        cx, cy = (x + 0.5) / STRIDE - 0.5, (y + 0.5) / STRIDE - 0.5
        out[j] = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * SIGMA**2))
    return out


def augment(rng, image, keypoints):
    m, mirror = random_affine(rng, WIDTH, HEIGHT, scale=(0.75, 1.25), rotate=15)
    img = photometric(rng, warp_image(image, m, WIDTH, HEIGHT))
    k = keypoints.copy()
    ok = k[:, 0] >= 0
    k[ok] = k[ok] @ m[:, :2].T + m[:, 2]
    if mirror:
        k = k[FLIP_INDEX]  # the person's right hand is now on the other side: swap the labels
    inside = (k[:, 0] >= 0) & (k[:, 0] < WIDTH) & (k[:, 1] >= 0) & (k[:, 1] < HEIGHT)
    k[~inside] = -1
    return img, k


def predict(net: PoseNet, images: np.ndarray) -> np.ndarray:
    """N canvas images → N×18×3 (x, y, score) in canvas pixels."""
    hm = net(to_tensor(images)).float().numpy()
    return np.stack([decode_heatmaps(h, STRIDE) for h in hm])


def main():
    ap = loop.arguments(__doc__, "runs/pose", steps=2400, batch=16)
    ap.add_argument(
        "--augment",
        choices=["full", *FRAMED],
        default="full",
        help="shop: most of each batch in random shop framings (see above); crops: in person-anchored "
        "crops only (the crop specialist), validated on waist-up, knee-up and no-head",
    )
    ap.add_argument("--init", type=Path, help="the served .onnx file to continue from (BatchNorms folded and frozen)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = keypoint_samples()[: args.limit]
    train = build_cache([x for x in samples if x[0].split == "train"])
    val_sets = {"full": build_cache([x for x in samples if x[0].split == "val"] or samples[:2])}
    if args.augment in FRAMED:  # the photos with person labels, at the size the framings crop from

        def both(split):  # per set, so the segmentation trainer's caches are reused
            parts = [
                labelled_cache([s for s in ss[: args.limit] if s.split == split], *SHOP_CACHE)
                for ss in (fashionista_samples(), ccp_samples())
            ]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

        shop_train = both("train")
        val_sets = framed_sets(both("val"), FRAMED[args.augment][1], (WIDTH, HEIGHT), ("person",))
    print(f"train photos {len(train['images'])}, validation photos {len(next(iter(val_sets.values()))['images'])}")

    torch.manual_seed(args.seed)
    net = PoseNet()
    if args.init:
        if not (args.out / "last.pt").exists():
            load_onnx_weights(net, args.init, torch.zeros(1, 3, HEIGHT, WIDTH))
            print(f"initialised from {args.init} (BatchNorms folded)", flush=True)
        freeze_batchnorm(net)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)

    framed = round(0.7 * args.batch) if args.augment in FRAMED else 0
    modes = FRAMED[args.augment][0] if framed else None

    def loss_fn(rng):
        idx = rng.integers(0, len(train["images"]), args.batch - framed)
        pairs = [augment(rng, train["images"][i], train["keypoints"][i]) for i in idx]
        images, points = [p[0] for p in pairs], [p[1] for p in pairs]
        if framed:
            shop_images, (shop_points,) = framed_batch(
                rng, shop_train, framed, (WIDTH, HEIGHT), ("keypoints",), modes=modes
            )
            images, points = [*images, *shop_images], [*points, *shop_points]
        x = to_tensor(np.stack(images))
        target = torch.from_numpy(np.stack([heatmaps(k) for k in points]))
        pred = net(x)
        # Peaks are a tiny part of each map: weight them up so the net does not settle on all-zero.
        return ((pred - target) ** 2 * (1 + 10 * target)).mean() * 100

    def scores_of(val):
        preds = np.concatenate([predict(net, val["images"][s : s + 32]) for s in range(0, len(val["images"]), 32)])
        found = preds[:, :, 2] >= SCORE_THRESHOLD
        return {"pck": pck(np.where(found[..., None], preds[:, :, :2], -1), val["keypoints"])["mean"]}

    def validation():
        return framed_scores(val_sets, scores_of, ("pck",), "framed_pck")

    loop.run(args, net, opt, sched, loss_fn, validation, "framed_pck" if args.augment in FRAMED else "pck")


if __name__ == "__main__":
    main()
