"""Train the skin generator (pix2pix: U-Net + PatchGAN) on the dataset of training/skin_data.py.

    python -m training.train_skin --out runs/skin --steps 3000                 # the served configuration
    python -m training.train_skin --out runs/skin-in1 --inputs 1 --steps 1000  # an ablation

--inputs 1: apparel_head_foot only; 2: + the pose lines; 3: + the skin mask. --adv-weight 0 trains
with L1 alone; --no-mask-output lets the generator write everywhere instead of only in the skin
region. Adam lr 2e-4, β1 0.5 and L1 weight 100 are pix2pix's (and the reference study's) settings;
the learning rate decays linearly to 0 over the second half. Every validation writes a sample grid
(apparel_head_foot | pose | mask | generated | target) to <out>/samples/. Resumable.
"""

import argparse

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from training import loop
from training.metrics import image_metrics
from training.models.skin import Pix2Pix, generate, to_uint8, to_unit
from training.skin_data import build, grid

CHANNELS = {1: 3, 2: 6, 3: 7}


@torch.no_grad()
def validate(net: Pix2Pix, val, channels: int, mask_output: bool, samples_path=None) -> dict:
    scores = []
    for s in range(0, len(val["inputs"]), 32):
        fake = to_uint8(generate(net.gen, to_unit(val["inputs"][s : s + 32]), channels, mask_output))
        if s == 0 and samples_path is not None:
            rows = [
                [x[..., :3], x[..., 3:6], x[..., 6], f, y]
                for x, f, y in zip(val["inputs"][:4], fake[:4], val["targets"][:4])
            ]
            samples_path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(samples_path), cv2.cvtColor(grid(rows), cv2.COLOR_RGB2BGR))
        scores += [image_metrics(f, y) for f, y in zip(fake, val["targets"][s : s + 32])]
    mse, psnr, ssim = np.mean(scores, axis=0)
    return {"mse": float(mse), "psnr": float(psnr), "ssim": float(ssim)}


def main():
    ap = loop.arguments(__doc__, "runs/skin", steps=3000, batch=8)
    ap.set_defaults(lr=2e-4)
    ap.add_argument("--inputs", type=int, choices=(1, 2, 3), default=3)
    ap.add_argument("--adv-weight", type=float, default=1.0, help="0 = L1 only")
    ap.add_argument("--l1-weight", type=float, default=100.0)
    ap.add_argument("--mask-output", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, val = build("train"), build("val")
    if args.limit:
        train, val = {k: v[: args.limit] for k, v in train.items()}, {k: v[: args.limit] for k, v in val.items()}
    print(f"train {len(train['inputs'])}, val {len(val['inputs'])}", flush=True)

    torch.manual_seed(args.seed)
    channels, adversarial = CHANNELS[args.inputs], args.adv_weight > 0
    net = Pix2Pix(channels, adversarial)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    half = args.steps // 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < half else max(0.0, (args.steps - s) / (args.steps - half))
    )

    def loss_fn(rng):
        idx = rng.integers(0, len(train["inputs"]), args.batch)
        x, y = to_unit(train["inputs"][idx]), to_unit(train["targets"][idx])
        fake = generate(net.gen, x, channels, args.mask_output)
        loss = args.l1_weight * (fake - y).abs().mean()
        if adversarial:
            cond = x[:, :channels]
            # One optimiser step trains both: the generator's adversarial term sees the discriminator
            # through detached weights (no gradient into it), the discriminator sees a detached fake.
            frozen = {k: v.detach() for k, v in net.disc.named_parameters()}
            g_logits = functional_call(net.disc, frozen, (torch.cat([cond, fake], 1),))
            loss = loss + args.adv_weight * F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            real = net.disc(torch.cat([cond, y], 1))
            false = net.disc(torch.cat([cond, fake.detach()], 1))
            loss = loss + 0.5 * (
                F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(false, torch.zeros_like(false))
            )
        return loss

    def validation():  # the scheduler has counted the steps
        return validate(net, val, channels, args.mask_output, args.out / "samples" / f"step{sched.last_epoch:05d}.png")

    loop.run(args, net, opt, sched, loss_fn, validation, "psnr")


if __name__ == "__main__":
    main()
