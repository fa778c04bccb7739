"""Evaluate the exported cutout model on the CCP validation photos at full size, through exactly the
service's pipeline (fashionpixel.cutout.matte), for each focus/refinement variant.

    python -m training.evaluate_cutout [--model model_repository/cutout/1/model.onnx] \
        [--variants first first+guided focus+guided focus+matting ...] [--limit N] [--json F] [--pictures F]

Per garment group (all, top, bottom, dress, shoes): Dice of the matte (alpha ≥ 0.5) against CCP's
labels — pooled over all pixels, and the median/mean per photo over photos where the group is
present in the labels — and the boundary F-score (boundary pixels within 2 px count as matched).
Also ms per photo of each variant for `all` (network runs included) and a threshold sweep of the first pass.
`--split train` scores the photos the network was trained on instead (is it underfitting?).
The focus variants ask the served pose network where a small person is, as the service does
(fashionpixel.keypoints.locate_person); `--no-locate` leaves it out.
"""

import argparse
import asyncio
import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np

from fashionpixel import cutout
from fashionpixel.cutout import GARMENTS
from fashionpixel.models import CUTOUT, POSE
from fashionpixel.networks import infer_with
from fashionpixel.stages import inline, untimed
from training.datasets import ccp_samples, read_garments, read_labels
from training.framing import add_framing_argument, add_split_argument, chosen_framings, framed_photos, shop_mean
from training.metrics import Tally, truth_mask
from training.served import onnx_network

VARIANTS = {  # name → (focus, refine)
    "first": (False, "none"),
    "first+guided": (False, "guided"),
    "first+matting": (False, "matting"),
    "focus": (True, "none"),
    "focus+guided": (True, "guided"),
    "focus+matting": (True, "matting"),
}
GROUP_VARIANTS = (
    "first",
    "first+guided",
    "focus+guided",
)  # per-group rows for these; the others report `all` only (matting is slow)
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def score_photos(
    infer, infer_memo, memo: dict, photos, variants: list[str], pictures: Path | None, locate=None
) -> dict:
    """Every variant's Dice / boundary F per group over (photo, garment-group map) pairs."""
    tallies = {v: {g: Tally() for g in GARMENTS} for v in variants}
    sweep = {t: Tally() for t in SWEEP}
    ms = {v: 0.0 for v in variants}
    shown = []
    n = 0
    for image, groups in photos:
        n += 1
        for v in variants:
            focus, refine = VARIANTS[v]
            for g in GARMENTS if v in GROUP_VARIANTS else ("all",):
                start = time.perf_counter()
                alpha = asyncio.run(
                    cutout.matte(
                        image,
                        g,
                        focus=focus,
                        refine=refine,
                        cpu=inline,
                        infer=infer if g == "all" else infer_memo,
                        stage=untimed,
                        pose=locate,
                    )
                )
                if g == "all":
                    ms[v] += (time.perf_counter() - start) * 1000
                    if v == variants[-1] and len(shown) < 6:
                        shown.append((image, alpha))
                tallies[v][g].add(alpha >= 0.5, truth_mask(groups, g))
        canvas, box = cutout.prepare(image)
        prob = cutout.to_photo(
            cutout.garment_probability(asyncio.run(infer(canvas)), "all"), box, image.shape[1], image.shape[0]
        )
        for t in SWEEP:
            sweep[t].add(prob >= t, groups > 0)
        memo.clear()
        if n % 20 == 0:
            print(f"{n} photos", flush=True)
    if pictures:
        checkerboard_grid(shown, pictures)
    return {
        "photos": n,
        "variants": {
            v: {g: t.summary() for g, t in tallies[v].items() if t.total} | {"ms": ms[v] / max(n, 1)} for v in variants
        },
        "threshold_sweep_first_pass_all": {str(t): sweep[t].summary()["dice"] for t in SWEEP},
    }


def evaluate(
    model: Path,
    variants: list[str],
    limit: int | None,
    threads: int,
    pictures: Path | None,
    split: str = "val",
    framings: tuple[str, ...] = ("full",),
    locate: bool = True,
) -> dict:
    """The report of one framing (`full`) or, with several, one per framing under `framings` and their
    `shop` mean (Dice of `all` per variant over the shop framings)."""
    pose = POSE.onnx_path(Path("model_repository"))
    network = onnx_network({CUTOUT: model} | ({POSE: pose} if locate else {}), threads)
    garment, locator = infer_with(network, CUTOUT), infer_with(network, POSE) if locate else None
    memo: dict[bytes, np.ndarray] = {}

    async def infer(canvas):
        key = hashlib.md5(canvas.tobytes()).digest()
        memo[key] = await garment(canvas)
        return memo[key]

    async def infer_memo(canvas):  # the groups reuse what the timed "all" run of the photo computed
        key = hashlib.md5(canvas.tobytes()).digest()
        return memo[key] if key in memo else await infer(canvas)

    def read(s):
        return {"garment": read_garments(s), "person": read_labels(s)[0]}

    samples = [s for s in ccp_samples() if s.split == split][:limit]
    per = {}
    for f in framings:
        photos = ((image, labels["garment"]) for _, image, labels, _ in framed_photos(f, samples, read))
        shots = pictures and (
            pictures if len(framings) == 1 else pictures.with_name(f"{pictures.stem}_{f}{pictures.suffix}")
        )
        per[f] = score_photos(infer, infer_memo, memo, photos, variants, shots, locator)
    head = {"model": str(model), "split": split} | ({"locate": str(pose)} if locate else {})
    if framings == ("full",):
        return head | per["full"]
    shop = {v: shop_mean({f: r["variants"][v]["all"]["dice"] for f, r in per.items()}) for v in variants}
    return head | {"photos": len(samples), "framings": per, "shop_all_dice": shop}


def checkerboard_grid(cases: list[tuple[np.ndarray, np.ndarray]], path: Path, height: int = 300) -> None:
    """Photo | cutout on a checkerboard, side by side, for the model card."""
    tiles = []
    for image, alpha in cases:
        h, w = alpha.shape
        yy, xx = np.mgrid[:h, :w]
        board = np.where(((yy // 16 + xx // 16) % 2)[..., None] == 0, 255, 200).astype(np.float32)
        cut = image * alpha[..., None] + board * (1 - alpha[..., None])
        pair = np.hstack([image, cut.astype(np.uint8)])
        tiles.append(cv2.resize(pair, (pair.shape[1] * height // pair.shape[0], height), interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[i : i + 2]) for i in range(0, len(tiles) - 1, 2)]
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def print_table(report: dict) -> None:
    print(f"{'variant':<15} {'group':<7} {'dice':>6} {'median':>7} {'BF':>6}")
    for v, groups in report["variants"].items():
        for g in [g for g in GARMENTS if g in groups]:
            r = groups[g]
            med = f"{r['median_dice']:.4f}" if r["median_dice"] is not None else "-"
            print(f"{v:<15} {g:<7} {r['dice']:.4f} {med:>7} {r['boundary_f']:.4f}")
        print(f"{v:<15} ms/photo (all) {groups['ms']:.0f}")
    print("threshold sweep (first pass, all):", report["threshold_sweep_first_pass_all"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=CUTOUT.onnx_path(Path("model_repository")))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    add_split_argument(ap)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2)
    add_framing_argument(ap)
    ap.add_argument("--no-locate", action="store_true", help="the focus pass without the pose network's help")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--pictures", type=Path, help="write photo | cutout pictures here (PNG)")
    args = ap.parse_args()
    report = evaluate(
        args.model,
        args.variants,
        args.limit,
        args.threads,
        args.pictures,
        args.split,
        chosen_framings(args.framing),
        not args.no_locate,
    )
    for name, part in report.get("framings", {"full": report}).items():
        print(f"=== framing {name}, {part['photos']} photos")
        print_table(part)
    if "shop_all_dice" in report:
        print("=== shop mean, Dice of all:", {v: round(d, 4) for v, d in report["shop_all_dice"].items()})
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
