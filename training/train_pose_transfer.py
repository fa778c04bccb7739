"""Train the pose-transfer generator (ADGAN-style) on mirrored, re-posed and reconstructed pairs.

    python -m training.train_pose_transfer --out runs/pose-transfer --steps 1400   # stage 1
    python -m training.train_pose_transfer --out runs/pose-transfer-ssim --init runs/pose-transfer/best.pt \
        --steps 1000 --lr 1e-4 --ssim-weight 30   # stage 2: fine-tuning on SSIM
    python -m training.train_pose_transfer --out runs/pose-transfer-ssim3 --init runs/pose-transfer-ssim/best.pt \
        --steps 900 --lr 1e-4 --ssim-weight 100   # stage 3: SSIM weighted up
    python -m training.train_pose_transfer --out runs/pose-transfer-ssim4 --init runs/pose-transfer-ssim3/best.pt \
        --steps 1100 --lr 1e-4 --ssim-weight 300 --adv-weight 0.5   # stage 4, the served model
    python -m training.train_pose_transfer --deepfashion DIR ...  # plus real DeepFashion pairs (images in DIR)
    python -m training.train_pose_transfer --out runs/pose-transfer-copy --init model_repository/pose_transfer/1/model.onnx \
        --steps N --lr 1e-4 --ssim-weight 50 --adv-weight 0.5 --gate-weight 10 --texture-weight 50 \
        --feature-weight 10 --threads 1   # issue 25: keep the warp's texture (from the served ONNX file)

Loss: L1 × 100 on the image (pix2pix's weight), binary cross-entropy × 10 on the alpha against the
target's person mask, optionally (1 − SSIM) × --ssim-weight on the image (the metric itself, as
scikit-image computes it), and the two PatchGANs' adversarial terms × --adv-weight (0 = no GAN). Issue
25's terms, all off by default: --gate-weight (the copy-or-paint gate toward 1 where the warp's pixel
agrees with the target, toward 0 where it does not; training.losses.gate_loss), --texture-weight (L1
between the local texture energy of output and target inside the target person, training.losses.
texture_loss: a blur pays for the detail it lacks), --feature-weight (pix2pixHD's feature matching: L1 between the discriminators' intermediate
features of output and target) and --cross-colour-weight (--cross-batch more pairs per step of two different
people, which have no true image: each garment's mean colour where the warp carries it must stay the
source's (`--cross-colour-goal warp`: the mean of the warp's pixels it carried there),
training.losses.part_colour_loss; on the painted head by default, so the paint takes the
garment's colour; `--cross-colour-head result` asks it of the composed image, which the gate meets by
copying the warp. The pairs come from their own random stream, so the other pairs are the control's).
--anchor-weight holds the paint's detail (what a 2 px blur removes) and the gate to --init's generator on
every pair, so the colour loss moves the paint's colour without sharpening it (training.losses.
detail_anchor_loss)."""

from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fashionpixel.models import SEGMENTATION
from fashionpixel.pose_transfer import PART_NAMES
from training import loop
from training.datasets import REPO
from training.from_onnx import check_against_onnx, freeze_batchnorm, is_frozen, load_onnx_weights
from training.losses import detail_anchor_loss, gate_loss, part_colour_loss, ssim, texture_loss
from training.metrics import image_metrics
from training.models.pose_transfer import PoseTransferGAN, PoseTransferGenerator, PoseTransferServing, compose, unit
from training.models.skin import to_uint8
from training.pose_transfer_data import (
    DEEPFASHION,
    batch,
    build,
    build_real_pairs,
    cross_batch,
    deepfashion_pairs,
    mirror_pairs,
    real_batch,
    segmentation_parser,
)
from training.skin_data import grid

GARMENT_PARTS = [PART_NAMES.index(p) for p in ("t-shirt", "pants", "dress")]  # issue 25's colour-scored garments


def tensors(inputs: dict[str, np.ndarray]):
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
    return unit(t["source"]), t["parts"][..., 0].long(), unit(t["pose"]), unit(t["warped"])


def run(gen: PoseTransferGenerator, inputs: dict[str, np.ndarray]):
    return gen(*tensors(inputs))


@torch.no_grad()
def validate(net: PoseTransferGAN, pairs, samples_path=None) -> dict:
    inputs, targets, _ = pairs
    scores = []
    for s in range(0, len(targets), 32):
        fake = to_uint8(run(net.gen, {k: v[s : s + 32] for k, v in inputs.items()})[0])
        if s == 0 and samples_path is not None:
            rows = [[inputs["source"][j], inputs["warped"][j][..., :3], fake[j], targets[j]] for j in range(4)]
            samples_path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(samples_path), cv2.cvtColor(grid(rows), cv2.COLOR_RGB2BGR))
        scores += [image_metrics(f, y) for f, y in zip(fake, targets[s : s + 32])]
    mse, psnr, ssim = np.mean(scores, axis=0)
    return {"mse": float(mse), "psnr": float(psnr), "ssim": float(ssim)}


def adversarial_terms(
    disc: nn.Module, cond: torch.Tensor, fake: torch.Tensor, real: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the generator's term through frozen discriminator weights plus the discriminator's own,
    feature matching: mean L1 between the discriminator's activations on the fake and on the real)."""
    bce = F.binary_cross_entropy_with_logits
    frozen = {k: v.detach() for k, v in disc.named_parameters()}
    acts: list[torch.Tensor] = []  # the activations after each LeakyReLU, in call order
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: acts.append(o)) for m in disc.modules() if isinstance(m, nn.LeakyReLU)
    ]
    try:
        g = functional_call(disc, frozen, (torch.cat([cond, fake], 1),))
        fake_acts = list(acts)
        acts.clear()
        r = disc(torch.cat([cond, real], 1))
        real_acts = [a.detach() for a in acts]
    finally:
        for h in hooks:
            h.remove()
    f = disc(torch.cat([cond, fake.detach()], 1))
    matching = sum((a - b).abs().mean() for a, b in zip(fake_acts, real_acts)) / len(real_acts)
    adversarial = bce(g, torch.ones_like(g)) + 0.5 * (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    return adversarial, matching


def load_served(gen: PoseTransferGenerator, onnx_path: Path, inputs: dict[str, np.ndarray]) -> float:
    """The served ONNX file's weights into `gen` (convolutions with their BatchNorms folded, then the
    style MLP's two Gemm layers by name); returns the largest grey-level difference to the file on
    `inputs`, and raises if it is more than one grey level (a value on a rounding boundary)."""
    load_onnx_weights(gen, onnx_path, tensors({k: v[:1] for k, v in inputs.items()}))
    state = gen.state_dict()
    with torch.no_grad():
        for init in onnx.load(str(onnx_path)).graph.initializer:
            name = init.name.removeprefix("gen.")
            if name in state and name.startswith("style."):
                state[name].copy_(torch.from_numpy(onnx.numpy_helper.to_array(init).copy()))
    return check_against_onnx(PoseTransferServing(gen), onnx_path, inputs, ["image"], atol=1)


def anchor_reference(init: Path, frozen: bool, inputs: dict[str, np.ndarray]) -> PoseTransferGenerator:
    """The generator as --init gives it, frozen: what --anchor-weight holds the detail to (read from
    --init again on a resume, so a resumed run keeps the same reference)."""
    reference = PoseTransferGenerator()
    if str(init).endswith(".onnx"):
        load_served(reference, init, inputs)
    else:
        state = torch.load(init, weights_only=False)["model"]
        reference.load_state_dict({k.removeprefix("gen."): v.float() for k, v in state.items() if k.startswith("gen.")})
    if frozen:
        freeze_batchnorm(reference)
    return reference.eval().requires_grad_(False)


def main():
    ap = loop.arguments(__doc__, "runs/pose-transfer", steps=1400, batch=8)
    ap.set_defaults(lr=2e-4, val_every=200)
    ap.add_argument("--adv-weight", type=float, default=1.0, help="0 = no discriminators")
    ap.add_argument("--l1-weight", type=float, default=100.0)
    ap.add_argument("--ssim-weight", type=float, default=0.0, help="weight of 1 − SSIM on the image")
    ap.add_argument(
        "--init", type=Path, help="start from this checkpoint's weights or the served .onnx file (new schedule)"
    )
    ap.add_argument("--gate-weight", type=float, default=0.0, help="copy the warp where it agrees with the target")
    ap.add_argument("--gate-tolerance", type=float, default=0.15, help="agreement: mean |warp − target| in [-1, 1]")
    ap.add_argument(
        "--texture-weight", type=float, default=0.0, help="match the local texture energy inside the person"
    )
    ap.add_argument("--feature-weight", type=float, default=0.0, help="discriminator feature matching")
    ap.add_argument(
        "--cross-colour-weight", type=float, default=0.0, help="keep the garments' colour across people (issue 25)"
    )
    ap.add_argument("--cross-batch", type=int, default=4, help="pairs across people per step")
    ap.add_argument("--cross-colour-head", choices=("painted", "result"), default="painted")
    ap.add_argument(
        "--cross-colour-goal",
        choices=("source", "warp"),
        default="source",
        help="each garment's mean colour on the whole source, or of the warp's pixels it carried",
    )
    ap.add_argument(
        "--anchor-weight",
        type=float,
        default=0.0,
        help="hold the paint's detail and the gate to --init's (the paint's colour stays free)",
    )
    ap.add_argument("--deepfashion", type=Path, help="folder of DeepFashion 'fashion-resize' images")
    ap.add_argument("--deepfashion-annotations", type=Path, default=DEEPFASHION / "fashion-resize-annotation-test.csv")
    ap.add_argument("--deepfashion-pairs", type=Path, default=DEEPFASHION / "fashion-resize-pairs-test.csv")
    ap.add_argument(
        "--segmentation",
        type=Path,
        default=SEGMENTATION.onnx_path(REPO / "model_repository"),
        help="parses the DeepFashion images",
    )
    args = ap.parse_args()
    if args.anchor_weight > 0 and not args.init:
        ap.error("--anchor-weight holds the generator to --init's: give --init")
    torch.set_num_threads(args.threads)
    train, val = build("train"), build("val")
    real = None
    if args.deepfashion:
        pairs, skipped = deepfashion_pairs(args.deepfashion, args.deepfashion_annotations, args.deepfashion_pairs)
        print(f"DeepFashion: {len(pairs)} pairs with both images, left out {skipped}", flush=True)
        real = build_real_pairs(pairs, segmentation_parser(args.segmentation)) if pairs else None
    if args.limit:
        train, val = {k: v[: args.limit] for k, v in train.items()}, {k: v[: args.limit] for k, v in val.items()}
    val_pairs = mirror_pairs(val)
    print(f"train {len(train['images'])}, val {len(val['images'])}", flush=True)

    torch.manual_seed(args.seed)
    net = PoseTransferGAN(args.adv_weight > 0 or args.feature_weight > 0)
    frozen = False
    if args.init and str(args.init).endswith(".onnx"):
        frozen = True
        if not (args.out / "last.pt").exists():
            worst = load_served(net.gen, args.init, {k: v[:8] for k, v in val_pairs[0].items()})
            print(f"initialised from {args.init} (BatchNorms folded; max |Δ| to the file {worst:.0f} grey levels)")
    elif args.init:
        ck = torch.load(args.init, weights_only=False)
        frozen = is_frozen(ck.get("args", {}))
        if not (args.out / "last.pt").exists():
            # strict=False: a checkpoint trained without discriminators leaves them freshly initialised
            net.load_state_dict({k: v.float() for k, v in ck["model"].items()}, strict=False)
            print(f"initialised from {args.init}", flush=True)
    if frozen:  # folded BatchNorms: batch statistics would undo them
        freeze_batchnorm(net.gen)
    reference = None
    if args.anchor_weight > 0:
        reference = anchor_reference(args.init, frozen, {k: v[:8] for k, v in val_pairs[0].items()})
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    half = args.steps // 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < half else max(0.0, (args.steps - s) / (args.steps - half))
    )

    cross_rng = np.random.default_rng(args.seed + 1)  # its own stream: the other pairs stay the control's

    def loss_fn(rng):
        n_real = args.batch // 2 if real is not None else 0
        inputs, targets, target_parts = batch(train, rng.integers(0, len(train["images"]), args.batch - n_real), rng)
        if n_real:
            r_inputs, r_targets, r_parts = real_batch(real, rng.integers(0, len(real["images"]), n_real))
            inputs = {k: np.concatenate([v, r_inputs[k]]) for k, v in inputs.items()}
            targets, target_parts = np.concatenate([targets, r_targets]), np.concatenate([target_parts, r_parts])
        source, parts, pose, warped = tensors(inputs)
        y = unit(torch.from_numpy(targets))
        painted, alpha, gate = net.gen.heads(source, parts, pose, warped)
        fake = compose(painted, alpha, gate, warped[:, :3])
        person = torch.from_numpy(target_parts > 0).float()[:, None]
        loss = args.l1_weight * (fake - y).abs().mean() + 10 * F.binary_cross_entropy_with_logits(alpha, person)
        if args.ssim_weight > 0:
            loss = loss + args.ssim_weight * (1 - ssim(fake, y))
        if args.gate_weight > 0:
            loss = loss + args.gate_weight * gate_loss(gate, warped, y, args.gate_tolerance)
        if args.texture_weight > 0:
            loss = loss + args.texture_weight * texture_loss(fake, y, person)
        if args.cross_colour_weight > 0:
            c_inputs, carried = cross_batch(train, args.cross_batch, cross_rng)
            c_source, c_parts, c_pose, c_warped = tensors(c_inputs)
            c_painted, c_alpha, c_gate = net.gen.heads(c_source, c_parts, c_pose, c_warped)
            c_fake = (
                c_painted
                if args.cross_colour_head == "painted"
                else compose(c_painted, c_alpha, c_gate, c_warped[:, :3])
            )
            carried = torch.from_numpy(carried).long()
            goal = (c_source, c_parts) if args.cross_colour_goal == "source" else (c_warped[:, :3], carried)
            colour = part_colour_loss(c_fake, *goal, carried, GARMENT_PARTS)
            loss = loss + args.cross_colour_weight * colour
            if reference is not None:
                with torch.no_grad():
                    c_reference = reference.heads(c_source, c_parts, c_pose, c_warped)
                anchor = detail_anchor_loss((c_painted, c_alpha, c_gate), c_reference)
                loss = loss + args.anchor_weight * anchor
        if reference is not None:
            with torch.no_grad():
                own_reference = reference.heads(source, parts, pose, warped)
            loss = loss + args.anchor_weight * detail_anchor_loss((painted, alpha, gate), own_reference)
        if net.disc_pose is not None:
            adv_pose, fm_pose = adversarial_terms(net.disc_pose, pose, fake, y)
            adv_app, fm_app = adversarial_terms(net.disc_app, source, fake, y)
            loss = loss + args.adv_weight * 0.5 * (adv_pose + adv_app) + args.feature_weight * 0.5 * (fm_pose + fm_app)
        return loss

    def validation():
        return validate(net, val_pairs, args.out / "samples" / f"step{sched.last_epoch:05d}.png")

    loop.run(args, net, opt, sched, loss_fn, validation, "ssim", frozen_batchnorm=frozen)


if __name__ == "__main__":
    main()
