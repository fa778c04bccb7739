"""Train the segmentation network (person + fashion heads) on Fashionista and CCP.

    python -m training.train_segmentation --out runs/segmentation --steps 3000 \
        [--arch segnet|segnet-deep|unet|deeplabv3plus|u2net] [--loss ce+dice|ce|dice] [--pseudo runs/pseudo-ccp]

Resumable: re-running the same command continues from <out>/last.pt. Prints progress; keeps the
checkpoint with the best validation fashion mean IoU (person, for a person-only run) as <out>/best.pt.
The checkpoint's "args" record the architecture (and loss), which the export command reads.

`--arch` picks the network from training/models/segmentation_archs.py (default SegNet, the served
one); `--grow CHECKPOINT` starts a `segnet-deep` (SegNet with more blocks at 1/16 and 1/32) from a trained
SegNet, its added blocks identities at first. `--loss` is the loss on each output: person cross-entropy (× --person-weight) plus, for
fashion, `ce+dice` (the default) class-weighted cross-entropy + 0.5 × soft Dice, `ce` the weighted
cross-entropy alone, `dice` soft Dice alone. For `u2net` the same loss is applied to the fused
output and to each of its six side outputs (all at the input size) and summed, U²-Net's fused
multi-output loss; validation scores the fused output only. `--pseudo` adds the photos a teacher
labelled (training.pseudo_label) to the training set: self-training on CCP's unlabelled photos.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashionpixel.labels import FASHION_CLASSES, PERSON_CLASSES
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training import loop
from training.augment import GEOMETRY, augmented_batch, framed_batch
from training.datasets import build_cache, ccp_samples, fashionista_samples, pseudo_samples, with_pseudo
from training.framing import FRAMED, SHOP_CACHE, framed_scores, framed_sets
from training.from_onnx import freeze_batchnorm, is_frozen, load_onnx_weights, thaw_batchnorm
from training.losses import dice_loss
from training.metrics import confusion, summarize
from training.models.blocks import to_tensor
from training.models.segmentation_archs import ARCHITECTURES, load_checkpoint

WIDTH, HEIGHT = CANVAS_W, CANVAS_H  # the network canvas (W×H), 2:3 like the photos
# Background is most pixels and easy; a lower weight helped the reference study too.
FASHION_WEIGHTS = torch.tensor([0.5, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0])


def make_batch(rng, data, batch: int, crop: tuple[int, int], geometry: str = "full"):
    if geometry in FRAMED:  # random shop framings, letterboxed into the whole canvas as the service does
        images, (persons, fashions) = framed_batch(
            rng, data, batch, (WIDTH, HEIGHT), ("person", "fashion"), modes=FRAMED[geometry][0]
        )
    else:
        images, (persons, fashions) = augmented_batch(rng, data, batch, crop, ("person", "fashion"), geometry=geometry)
    return to_tensor(images), torch.from_numpy(persons).long(), torch.from_numpy(fashions).long()


@torch.no_grad()
def validate(net: nn.Module, data) -> dict:
    """Metrics at the network canvas (fast; `evaluate_segmentation` measures at full photo size)."""
    cm_p, cm_f = np.zeros((2, 2), np.int64), np.zeros((7, 7), np.int64)
    for s in range(0, len(data["images"]), 16):
        p, f = net(to_tensor(data["images"][s : s + 16]))
        cm_p += confusion(p.argmax(1).numpy(), data["person"][s : s + 16], 2)
        cm_f += confusion(f.argmax(1).numpy(), data["fashion"][s : s + 16], 7)
    return {"person": summarize(cm_p, PERSON_CLASSES), "fashion": summarize(cm_f, FASHION_CLASSES)}


def main():
    ap = loop.arguments(__doc__, "runs/segmentation", steps=3200, batch=8)
    ap.add_argument("--crop", type=int, nargs=2, default=(192, 288), metavar=("W", "H"))
    ap.add_argument("--person-weight", type=float, default=1.0, help="weight of the person loss")
    ap.add_argument(
        "--fashion-weight",
        type=float,
        default=1.0,
        help="weight of the fashion loss (0: a person-only specialist, its fashion head untrained)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        help="start from this checkpoint's weights (fine-tuning, new schedule); "
        "an .onnx file (the served model) is read back with its BatchNorms folded and frozen",
    )
    ap.add_argument("--arch", choices=list(ARCHITECTURES), default="segnet", help="the network (see the module doc)")
    ap.add_argument(
        "--grow",
        type=Path,
        help="start a segnet-deep run from this plain SegNet checkpoint's weights, the added blocks "
        "identities at first (new schedule; its BatchNorms stay frozen if the checkpoint's were)",
    )
    ap.add_argument(
        "--background-weight",
        type=float,
        default=float(FASHION_WEIGHTS[0]),
        help="weight of the fashion background class in the cross-entropy",
    )
    ap.add_argument(
        "--loss",
        choices=["ce+dice", "ce", "dice"],
        default="ce+dice",
        help="fashion loss: weighted CE + 0.5 × Dice, weighted CE, or Dice (person: CE always)",
    )
    ap.add_argument(
        "--augment",
        choices=[*GEOMETRY, *FRAMED],
        default="full",
        help="geometric augmentation: full (scale 0.7-1.3, ±10°, ±10%% shift), "
        "light (0.9-1.1, ±3°, ±3%%) or shop (training.framing's random shop framings on the "
        "whole canvas, --crop unused; validation in four framings) or crops (only person-anchored "
        "crops: the crop specialist; validation on waist-up, knee-up and no-head)",
    )
    ap.add_argument(
        "--pseudo", type=Path, help="also train on this folder's pseudo-labelled photos (training.pseudo_label)"
    )
    ap.add_argument(
        "--live-batchnorm",
        action="store_true",
        help="a run from folded weights (a served file, or a run that started from one) trains with live "
        "BatchNorms, their statistics measured on training batches first (training.from_onnx.thaw_batchnorm)",
    )
    ap.add_argument("--teacher", type=Path, help="a person-teacher folder (training.pseudo_label) to distil")
    ap.add_argument("--teacher-batch", type=int, default=4, help="teacher-labelled photos added to each step")
    ap.add_argument("--teacher-weight", type=float, default=1.0, help="weight of their person loss")
    args = ap.parse_args()
    if args.grow and (args.arch != "segnet-deep" or args.init):
        ap.error("--grow starts a --arch segnet-deep run, instead of --init")
    if args.teacher and args.augment not in FRAMED:
        ap.error("--teacher frames the teacher's photos: it needs --augment shop or crops")
    resuming = (args.out / "last.pt").exists()
    from_onnx = bool(args.init and args.init.suffix == ".onnx")
    source = args.out / "last.pt" if resuming else None if from_onnx else args.init
    checkpoint = load_checkpoint(source, args.arch) if source else None
    if args.grow and not resuming:
        checkpoint = load_checkpoint(args.grow, "segnet")
    torch.set_num_threads(args.threads)

    fash, ccp = fashionista_samples()[: args.limit], ccp_samples()[: args.limit]
    # shop framings zoom into the photo: they crop from a larger cache so that zooms stay sharp
    cw, ch = SHOP_CACHE if args.augment in FRAMED else (WIDTH, HEIGHT)
    train = with_pseudo(
        [
            build_cache([s for s in fash if s.split == "train"], cw, ch),
            build_cache([s for s in ccp if s.split == "train"], cw, ch),
        ],
        args.pseudo,
        cw,
        ch,
        "seg",
        args.limit,
    )
    val = build_cache([s for s in fash if s.split == "val"], cw, ch)
    print(f"train images {len(train['images'])}, fashionista val images {len(val['images'])}", flush=True)
    taught = (
        build_cache(pseudo_samples(args.teacher, "person")[: args.limit], cw, ch, "person") if args.teacher else None
    )
    if taught:
        print(f"teacher-labelled images {len(taught['images'])} from {args.teacher}", flush=True)
    if args.augment in FRAMED:
        val_sets = framed_sets(val, FRAMED[args.augment][1], (WIDTH, HEIGHT), ("person", "fashion"))
    else:
        val_sets = {"full": val}

    torch.manual_seed(args.seed)
    net = ARCHITECTURES[args.arch]()
    if from_onnx and not resuming:
        load_onnx_weights(net, args.init, torch.zeros(1, 3, HEIGHT, WIDTH))
        print(f"initialised from {args.init} (BatchNorms folded)", flush=True)
    elif args.init and not resuming:
        net.load_state_dict(checkpoint["model"])
        print(f"initialised from {args.init}", flush=True)
    elif args.grow and not resuming:
        net.grow_from(checkpoint["model"])
        print(f"grown from {args.grow}: the added blocks start as identities", flush=True)
    # folded BatchNorms (a served file's weights, or a run that started from one) stay frozen, or come alive
    folded = from_onnx or is_frozen(checkpoint.get("args", {}) if checkpoint else {})
    if folded and args.live_batchnorm and not resuming:
        calibration = np.random.default_rng(args.seed + 10_000)
        thaw_batchnorm(
            net, (make_batch(calibration, train, args.batch, tuple(args.crop), args.augment)[0] for _ in range(25))
        )
        print("BatchNorms thawed: statistics of 25 training batches", flush=True)
    frozen = folded and not args.live_batchnorm
    if frozen:
        freeze_batchnorm(net)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05 if not (args.init or args.grow) else 0.1
    )

    weights = torch.cat([torch.tensor([args.background_weight]), FASHION_WEIGHTS[1:]])

    def fashion_loss(f, yf):
        if args.loss == "ce+dice":
            return F.cross_entropy(f, yf, weight=weights) + 0.5 * dice_loss(f, yf)
        if args.loss == "ce":
            return F.cross_entropy(f, yf, weight=weights)
        return dice_loss(f, yf)

    def output_loss(p, f, yp, yf):
        person = args.person_weight * F.cross_entropy(p, yp)
        # a person-only run (weight 0) does not compute the fashion loss at all
        return (person + args.fashion_weight * fashion_loss(f, yf)) if args.fashion_weight else person

    def teacher_loss(p_t, soft):
        # cross-entropy against the teacher's probability: -(q log p1 + (1 - q) log p0)
        q = soft.float() / 255
        logp = F.log_softmax(p_t, 1)
        return -(q * logp[:, 1] + (1 - q) * logp[:, 0]).mean()

    def loss_fn(rng):
        x, yp, yf = make_batch(rng, train, args.batch, tuple(args.crop), args.augment)
        if taught:  # one forward pass over both: the teacher's photos only train the person head
            xt, (soft,) = framed_batch(rng, taught, args.teacher_batch, (WIDTH, HEIGHT), ("teacher",))
            p, f = net(torch.cat([x, to_tensor(xt)]))
            n = len(x)
            return output_loss(p[:n], f[:n], yp, yf) + args.teacher_weight * teacher_loss(p[n:], torch.from_numpy(soft))
        if hasattr(net, "forward_with_sides"):  # u2net: fused + every side output, same loss each
            fused, sides = net.forward_with_sides(x)
            return sum(output_loss(p, f, yp, yf) for p, f in [fused, *sides])
        p, f = net(x)
        return output_loss(p, f, yp, yf)

    def scores_of(data):
        m = validate(net, data)
        return {"person_miou": m["person"]["mean_iou"], "fashion_miou": m["fashion"]["mean_iou"]}

    def validation():  # both tasks in every framing count alike
        return framed_scores(val_sets, scores_of, ("person_miou", "fashion_miou"), "framed_miou")

    score = "framed_miou" if len(val_sets) > 1 else "fashion_miou" if args.fashion_weight else "person_miou"
    loop.run(args, net, opt, sched, loss_fn, validation, score, frozen_batchnorm=frozen)


if __name__ == "__main__":
    main()
