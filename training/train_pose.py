"""Train the 18-keypoint heatmap network on the teacher keypoints of Fashionista and CCP.

    python -m training.train_pose --out runs/pose --steps 3000

Resumable (re-run the same command). Mirroring swaps the person's left and right keypoints, so a
flipped photo keeps correct labels. Keeps the best validation PCK@0.1 as <out>/best.pt.
"""

import numpy as np
import torch

from fashionpixel.keypoints import CANVAS_H, CANVAS_W, SCORE_THRESHOLD
from fashionpixel.letterbox import letterbox, points_to_canvas
from fashionpixel.pose import FLIP_INDEX, decode_heatmaps
from training import loop
from training.augment import photometric, random_affine, warp_image
from training.datasets import cached, keypoint_samples, read_image
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = keypoint_samples()[:args.limit]
    train = build_cache([x for x in samples if x[0].split == "train"])
    val = build_cache([x for x in samples if x[0].split == "val"] or samples[:2])
    print(f"train photos {len(train['images'])}, validation photos {len(val['images'])}", flush=True)

    torch.manual_seed(args.seed)
    net = PoseNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)

    def loss_fn(rng):
        idx = rng.integers(0, len(train["images"]), args.batch)
        pairs = [augment(rng, train["images"][i], train["keypoints"][i]) for i in idx]
        x = to_tensor(np.stack([p[0] for p in pairs]))
        target = torch.from_numpy(np.stack([heatmaps(p[1]) for p in pairs]))
        pred = net(x)
        # Peaks are a tiny part of each map: weight them up so the net does not settle on all-zero.
        return ((pred - target) ** 2 * (1 + 10 * target)).mean() * 100

    def validation():
        preds = np.concatenate([predict(net, val["images"][s:s + 32]) for s in range(0, len(val["images"]), 32)])
        found = preds[:, :, 2] >= SCORE_THRESHOLD
        return {"pck": pck(np.where(found[..., None], preds[:, :, :2], -1), val["keypoints"])["mean"]}

    loop.train(out=args.out, steps=args.steps, batch=args.batch, net=net, opt=opt, sched=sched, loss_fn=loss_fn,
               validate=validation, score="pck", val_every=args.val_every, seed=args.seed,
               args=vars(args) | {"out": str(args.out)})


if __name__ == "__main__":
    main()
