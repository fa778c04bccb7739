"""Train the cutout network (garment groups: none, top, bottom, dress, shoes) on CCP's fine labels.

    python -m training.train_cutout --out runs/cutout --init runs/segmentation/best.pt --steps 1400 [--arch A] \
        [--pseudo runs/pseudo-garment]

The network is a segmentation architecture (`--arch`, SegNet by default) with one 5-class head. It sees the photo both whole
(the service's first pass: the photo letterboxed into the 256×384 canvas) and zoomed up to 2.3×
(the second "focus" pass on a crop around the garment), so training crops 256×384 windows out of a
1.5× larger canvas at random scales. `--init` starts from a segmentation checkpoint (all but the
heads), or from a cutout checkpoint (all of it, to continue in a new phase): the same photos taught it
people and clothes already. `--pseudo` adds photos a teacher
labelled (training.pseudo_label --task cutout): self-training. Resumable like every training command.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fashionpixel.labels import GARMENT_CLASSES
from fashionpixel.segmentation import CANVAS_H, CANVAS_W
from training import loop
from training.augment import GEOMETRY, augmented_batch, framed_batch
from training.datasets import build_cache, ccp_samples, with_pseudo
from training.framing import SHOP_CACHE, VALIDATION_FRAMINGS, framed_scores, framed_sets
from training.from_onnx import freeze_batchnorm, is_frozen, load_onnx_weights
from training.losses import dice_loss
from training.metrics import confusion, summarize
from training.models.blocks import to_tensor
from training.models.cutout import garment_net
from training.models.segmentation_archs import ARCHITECTURES, load_checkpoint

ZOOM = 1.5  # the training canvas is this much larger than the network's input
CLASS_WEIGHTS = torch.tensor([0.5, 1.0, 1.0, 1.0, 1.2])  # "none" is most pixels and easy


@torch.no_grad()
def validate(net: torch.nn.Module, data) -> dict:
    """First-pass metrics at the network canvas: Dice of the union ("all") and group IoUs."""
    cm = np.zeros((5, 5), np.int64)
    inter = total = 0
    for s in range(0, len(data["images"]), 16):
        (logits,) = net(to_tensor(data["images"][s : s + 16]))
        pred, true = logits.argmax(1).numpy(), data["garment"][s : s + 16]
        cm += confusion(pred, true, 5)
        inter += np.logical_and(pred > 0, true > 0).sum()
        total += (pred > 0).sum() + (true > 0).sum()
    m = summarize(cm, GARMENT_CLASSES)
    return {"all_dice": float(2 * inter / max(total, 1)), "garment_miou": m["mean_iou"]}


def main():
    ap = loop.arguments(__doc__, "runs/cutout", steps=1400, batch=8)
    ap.add_argument(
        "--init",
        type=Path,
        help="segmentation checkpoint to start from (its heads are dropped); "
        "a cutout .onnx file (the served model) is read back with its BatchNorms folded and frozen",
    )
    ap.add_argument("--scale", type=float, nargs=2, default=(0.55, 1.55), help="zoom range on the large canvas")
    ap.add_argument(
        "--arch",
        choices=[a for a in ARCHITECTURES if a != "u2net"],
        default="segnet",
        help="the network (training/models/segmentation_archs.py); --init must be the same one",
    )
    ap.add_argument(
        "--augment",
        choices=[*GEOMETRY, "shop"],
        default="full",
        help="rotation and shift: full (±10°, ±10%%) or light (±3°, ±3%%), the zoom is --scale's; "
        "or shop: training.framing's random shop framings (--scale unused; validation in four framings)",
    )
    ap.add_argument(
        "--pseudo",
        type=Path,
        help="also train on this folder's pseudo-labelled photos (training.pseudo_label --task cutout)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ccp = ccp_samples()[: args.limit]
    shop = args.augment == "shop"
    big_w, big_h = SHOP_CACHE if shop else (round(CANVAS_W * ZOOM), round(CANVAS_H * ZOOM))
    train = with_pseudo(
        [build_cache([s for s in ccp if s.split == "train"], big_w, big_h, kind="garment")],
        args.pseudo,
        big_w,
        big_h,
        "garment",
        args.limit,
    )
    val_samples = [s for s in ccp if s.split == "val"]
    if shop:
        val_sets = framed_sets(
            build_cache(val_samples, *SHOP_CACHE, kind="garment"),
            VALIDATION_FRAMINGS,
            (CANVAS_W, CANVAS_H),
            ("garment",),
        )
    else:
        val_sets = {"full": build_cache(val_samples, CANVAS_W, CANVAS_H, kind="garment")}
    print(f"train images {len(train['images'])}, ccp val images {len(val_samples)}", flush=True)

    torch.manual_seed(args.seed)
    net = garment_net(args.arch)
    resuming = (args.out / "last.pt").exists()
    from_onnx = bool(args.init and args.init.suffix == ".onnx")
    init = load_checkpoint(args.init, args.arch) if args.init and not from_onnx else None
    if from_onnx and not resuming:
        load_onnx_weights(net, args.init, torch.zeros(1, 3, CANVAS_H, CANVAS_W))
        print(f"initialised from {args.init} (BatchNorms folded)", flush=True)
    elif args.init and not resuming:
        own = net.state_dict()  # a segmentation checkpoint's heads are dropped, a cutout checkpoint's kept
        state = {k: v for k, v in init["model"].items() if k in own and v.shape == own[k].shape}
        missing = net.load_state_dict(state, strict=False).missing_keys
        print(f"initialised from {args.init} (new: {', '.join(missing) or 'nothing'})", flush=True)
    # folded BatchNorms (a served file's weights, or a run that started from one) stay frozen
    frozen = from_onnx or is_frozen(init.get("args", {}) if init else {})
    if frozen:
        freeze_batchnorm(net)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)

    def loss_fn(rng):
        if shop:
            images, (labels,) = framed_batch(rng, train, args.batch, (CANVAS_W, CANVAS_H), ("garment",))
        else:
            images, (labels,) = augmented_batch(
                rng,
                train,
                args.batch,
                (CANVAS_W, CANVAS_H),
                ("garment",),
                scale=tuple(args.scale),
                geometry=args.augment,
            )
        x, y = to_tensor(images), torch.from_numpy(labels).long()
        (logits,) = net(x)
        # the union matters most to the product ("all" is the default cutout): a binary Dice on it too
        p_any = 1 - logits.softmax(1)[:, 0]
        t_any = (y > 0).float()
        any_dice = 1 - (2 * (p_any * t_any).sum() + 1) / (p_any.sum() + t_any.sum() + 1)
        return F.cross_entropy(logits, y, weight=CLASS_WEIGHTS) + 0.5 * dice_loss(logits, y) + 0.5 * any_dice

    def validation():
        return framed_scores(val_sets, lambda data: validate(net, data), ("all_dice",), "framed_dice")

    loop.run(args, net, opt, sched, loss_fn, validation, "framed_dice" if shop else "all_dice", frozen_batchnorm=frozen)


if __name__ == "__main__":
    main()
