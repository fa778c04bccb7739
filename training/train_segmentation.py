"""Train the segmentation network (person + fashion heads) on Fashionista and CCP.

    python -m training.train_segmentation --out runs/segmentation --steps 3000

Resumable: re-running the same command continues from <out>/last.pt. Prints progress; keeps the
checkpoint with the best validation fashion mean IoU as <out>/best.pt.
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fashionpixel.labels import FASHION_CLASSES, PERSON_CLASSES
from training.augment import photometric, random_affine, warp_image, warp_labels
from training.datasets import build_cache, ccp_samples, fashionista_samples
from training.metrics import confusion, summarize
from training.models.blocks import MEAN, STD
from training.models.segmentation import SegNet

WIDTH, HEIGHT = 256, 384  # the network's canvas (W×H), 2:3 like the photos
# Background is most pixels and easy; a lower weight helped the reference study too.
FASHION_WEIGHTS = torch.tensor([0.5, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (total + 1)).mean()


def make_batch(rng, data, batch: int, crop: tuple[int, int]):
    cw, ch = crop
    idx = rng.integers(0, len(data["images"]), batch)
    imgs, persons, fashions = [], [], []
    for i in idx:
        m, _ = random_affine(rng, WIDTH, HEIGHT)
        # mirroring needs no label swap here: no class is left/right specific
        img = photometric(rng, warp_image(data["images"][i], m, WIDTH, HEIGHT))
        per = warp_labels(data["person"][i], m, WIDTH, HEIGHT)
        fas = warp_labels(data["fashion"][i], m, WIDTH, HEIGHT)
        x0, y0 = rng.integers(0, WIDTH - cw + 1), rng.integers(0, HEIGHT - ch + 1)
        imgs.append(img[y0:y0 + ch, x0:x0 + cw])
        persons.append(per[y0:y0 + ch, x0:x0 + cw])
        fashions.append(fas[y0:y0 + ch, x0:x0 + cw])
    return (to_tensor(np.stack(imgs)), torch.from_numpy(np.stack(persons)).long(),
            torch.from_numpy(np.stack(fashions)).long())


@torch.no_grad()
def validate(net: SegNet, data) -> dict:
    """Metrics at the network canvas (fast; `evaluate_segmentation` measures at full photo size)."""
    net.eval()
    cm_p, cm_f = np.zeros((2, 2), np.int64), np.zeros((7, 7), np.int64)
    for s in range(0, len(data["images"]), 16):
        p, f = net(to_tensor(data["images"][s:s + 16]))
        cm_p += confusion(p.argmax(1).numpy(), data["person"][s:s + 16], 2)
        cm_f += confusion(f.argmax(1).numpy(), data["fashion"][s:s + 16], 7)
    net.train()
    return {"person": summarize(cm_p, PERSON_CLASSES), "fashion": summarize(cm_f, FASHION_CLASSES)}


def concat(parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/segmentation"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--crop", type=int, nargs=2, default=(192, 288), metavar=("W", "H"))
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="use only the first N images of each set (smoke tests)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    fash, ccp = fashionista_samples()[:args.limit], ccp_samples()[:args.limit]
    train = concat([build_cache([s for s in fash if s.split == "train"], WIDTH, HEIGHT),
                    build_cache([s for s in ccp if s.split == "train"], WIDTH, HEIGHT)])
    val = build_cache([s for s in fash if s.split == "val"], WIDTH, HEIGHT)
    print(f"train images {len(train['images'])}, fashionista val images {len(val['images'])}", flush=True)

    torch.manual_seed(args.seed)
    net = SegNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    step, best, history = 0, -1.0, []
    last = args.out / "last.pt"
    if last.exists():
        ck = torch.load(last, weights_only=False)
        net.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); sched.load_state_dict(ck["sched"])
        step, best, history = ck["step"], ck["best"], ck["history"]
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng(args.seed + step)  # a resumed run does not replay the same batches

    def save(path: Path):
        tmp = path.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "best": best, "history": history, "args": vars(args) | {"out": str(args.out)}}, tmp)
        tmp.replace(path)

    net.train()
    t0, seen = time.time(), 0
    while step < args.steps:
        x, yp, yf = make_batch(rng, train, args.batch, tuple(args.crop))
        p, f = net(x)
        loss = (F.cross_entropy(p, yp) + F.cross_entropy(f, yf, weight=FASHION_WEIGHTS)
                + 0.5 * dice_loss(f, yf))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        step += 1; seen += args.batch
        if step % 20 == 0:
            rate = seen / (time.time() - t0)
            eta = (args.steps - step) * args.batch / rate / 60
            print(f"step {step}/{args.steps} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{rate:.1f} img/s eta {eta:.1f} min", flush=True)
        if step % args.val_every == 0 or step == args.steps:
            m = validate(net, val)
            history.append({"step": step, "person_miou": m["person"]["mean_iou"], "fashion_miou": m["fashion"]["mean_iou"]})
            print("val", json.dumps(history[-1]), flush=True)
            if m["fashion"]["mean_iou"] > best:
                best = m["fashion"]["mean_iou"]
                save(args.out / "best.pt")
            save(last)
        elif step % 100 == 0:
            save(last)
    print("done; best fashion mean IoU at canvas size", best, flush=True)


if __name__ == "__main__":
    main()
