"""Train the segmentation network (person + fashion heads) on Fashionista and CCP.

    python -m training.train_segmentation --out runs/segmentation --steps 3000

Resumable: re-running the same command continues from <out>/last.pt. Prints progress; keeps the
checkpoint with the best validation fashion mean IoU as <out>/best.pt.
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fashionpixel.labels import FASHION_CLASSES, PERSON_CLASSES
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training import loop
from training.augment import augmented_batch
from training.datasets import build_cache, ccp_samples, fashionista_samples
from training.losses import dice_loss
from training.metrics import confusion, summarize
from training.models.blocks import to_tensor
from training.models.segmentation import SegNet

WIDTH, HEIGHT = CANVAS_W, CANVAS_H  # the network canvas (W×H), 2:3 like the photos
# Background is most pixels and easy; a lower weight helped the reference study too.
FASHION_WEIGHTS = torch.tensor([0.5, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0])


def make_batch(rng, data, batch: int, crop: tuple[int, int]):
    images, (persons, fashions) = augmented_batch(rng, data, batch, crop, ("person", "fashion"))
    return to_tensor(images), torch.from_numpy(persons).long(), torch.from_numpy(fashions).long()


@torch.no_grad()
def validate(net: SegNet, data) -> dict:
    """Metrics at the network canvas (fast; `evaluate_segmentation` measures at full photo size)."""
    cm_p, cm_f = np.zeros((2, 2), np.int64), np.zeros((7, 7), np.int64)
    for s in range(0, len(data["images"]), 16):
        p, f = net(to_tensor(data["images"][s:s + 16]))
        cm_p += confusion(p.argmax(1).numpy(), data["person"][s:s + 16], 2)
        cm_f += confusion(f.argmax(1).numpy(), data["fashion"][s:s + 16], 7)
    return {"person": summarize(cm_p, PERSON_CLASSES), "fashion": summarize(cm_f, FASHION_CLASSES)}


def concat(parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main():
    ap = loop.arguments(__doc__, "runs/segmentation", steps=3200, batch=8)
    ap.add_argument("--crop", type=int, nargs=2, default=(192, 288), metavar=("W", "H"))
    ap.add_argument("--person-weight", type=float, default=1.0, help="weight of the person loss")
    ap.add_argument("--init", type=Path, help="start from this checkpoint's weights (fine-tuning, new schedule)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    fash, ccp = fashionista_samples()[:args.limit], ccp_samples()[:args.limit]
    train = concat([build_cache([s for s in fash if s.split == "train"], WIDTH, HEIGHT),
                    build_cache([s for s in ccp if s.split == "train"], WIDTH, HEIGHT)])
    val = build_cache([s for s in fash if s.split == "val"], WIDTH, HEIGHT)
    print(f"train images {len(train['images'])}, fashionista val images {len(val['images'])}", flush=True)

    torch.manual_seed(args.seed)
    net = SegNet()
    if args.init and not (args.out / "last.pt").exists():
        net.load_state_dict(torch.load(args.init, weights_only=False)["model"])
        print(f"initialised from {args.init}", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05 if not args.init else 0.1)

    def loss_fn(rng):
        x, yp, yf = make_batch(rng, train, args.batch, tuple(args.crop))
        p, f = net(x)
        return (args.person_weight * F.cross_entropy(p, yp) + F.cross_entropy(f, yf, weight=FASHION_WEIGHTS)
                + 0.5 * dice_loss(f, yf))

    def validation():
        m = validate(net, val)
        return {"person_miou": m["person"]["mean_iou"], "fashion_miou": m["fashion"]["mean_iou"]}

    loop.train(out=args.out, steps=args.steps, batch=args.batch, net=net, opt=opt, sched=sched, loss_fn=loss_fn,
               validate=validation, score="fashion_miou", val_every=args.val_every, seed=args.seed,
               args=vars(args) | {"out": str(args.out)})

if __name__ == "__main__":
    main()
