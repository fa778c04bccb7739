"""Evaluate pose transfer across people (issue 25): person A's photo in person B's pose.

    python -m training.evaluate_cross_person [--model F] [--pairs N] [--threads T] [--json F] [--sheet F]
    python -m training.evaluate_cross_person --warp-only   # the part-wise warp alone: what copying keeps
    python -m training.evaluate_cross_person --canvas      # the canvas result enlarged (before the composition)
    python -m training.evaluate_cross_person --feather 2 --erode 1 --threshold 0.5 --fill painted   # a variant
    python -m training.evaluate_cross_person --colour-match 1 --match-pixels all   # per-garment colour correction
    python -m training.evaluate_cross_person --skirt off     # without the garment-aware ownership (a dress torn by the legs)
    python -m training.evaluate_cross_person --match-sigma 16 --match-tolerance 15   # the correction's local goal
    python -m training.evaluate_cross_person --compare BEFORE.json AFTER.json   # two reports, garment by garment

By default the result is composed at the output's resolution as the service composes it
(fashionpixel.pose_transfer.SERVED_COMPOSITE); the composition options change it.

The pairs are validation photos (the fixed split of training/datasets.py) that have parsing labels and
teacher keypoints: a seeded shuffle, each source paired with the photo half the list away, so source and
target are always different people. `--skip 80 --pairs 37` scores the 37 pairs after the card's 80
(different sources and targets): pairs no model was chosen on. Each pair runs through the service's pipeline
(fashionpixel.pose_transfer.transfer, served networks in ONNX Runtime) with the target photo as the
target. There is no true image of A in B's pose, so the scores are what a shopper checks:

- colour: the served parser (as the pipeline parses its source) finds each part on the source and on
  the result; CIEDE2000 ΔE between the part's median CIELAB colour on each. A part found on only one
  side is counted (`lost`: on the source only; `new`: on the result only), not scored. The headline is
  the mean over GARMENTS.
- texture: mean |Laplacian| inside the garments (their union, eroded off its outline) of the result
  divided by the source's, both resized to one body height first (the result is drawn at the
  target's scale). 1.0 = as sharp as the source.
- silhouette: the target's teacher skeleton drawn with thick limbs; `coverage` is the share of it
  under the parser's person mask on the result, `outside` the share of that person mask beyond a much
  wider envelope of the skeleton. The target photo's own labelled person gives the `reference`; a pair
  whose reference covers less than TRUSTED_SKELETON of it (the teacher found another person, or none)
  is counted in `untrusted_skeletons` and left out.
- mirror pose: every source in its mirrored pose, SSIM / PSNR as training/evaluate_pose_transfer
  scores it (training.metrics.mirror_pose_metrics).
"""

import argparse
import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from fashionpixel import segmentation
from fashionpixel.models import POSE_TRANSFER, SEGMENTATION
from fashionpixel.networks import infer_with
from fashionpixel.pose import draw_pose, skeleton_mask
from fashionpixel.pose_transfer import (
    CANVAS_W,
    PART_NAMES,
    SERVED_COMPOSITE,
    SKIRT_MAPS,
    Composite,
    parts_map,
    transfer,
)
from fashionpixel.stages import inline, untimed
from training.datasets import keypoint_samples, read_image, read_labels
from training.metrics import mean_image_metrics, mirror_pose_metrics
from training.served import REPO, file_md5, onnx_network, reading_files
from training.skin_data import grid, labelled

PAIRS_SEED = 25
# The parser's garment classes. Not shoes (too small to parse reliably on a blur), nor "other clothing"
# (the catch-all: person pixels with no class, jackets and bags on a photo, any blur on a result): even
# the warp alone, copying pixels, scores ΔE 12 on it, so it measures what the catch-all collects.
GARMENTS = ("t-shirt", "pants", "dress")
MIN_PART_SHARE = 0.01  # a part counts as found when it covers this share of the person mask
BODY_HEIGHT = 400  # px: texture is measured with the person's box this tall, so scale does not count
EDGE = 3  # px at BODY_HEIGHT: the garment mask is eroded this much so outlines are not texture
LIMB_WIDTH = 0.12  # × torso length: thick limbs that real people cover (98 % of them, validation masks)
TRUSTED_SKELETON = 0.8  # a teacher skeleton its own photo's labelled person covers less of is wrong
ENVELOPE_WIDTH = 0.8  # × torso length: beyond it a pixel is off the body (4 % of real people's)
SHEET_PAIRS = 12


# --- the metrics, on arrays (tests/test_cross_person.py checks them on cases with known answers) ---


def part_colours(image: np.ndarray, parts: np.ndarray) -> dict[str, np.ndarray]:
    """{part name: median CIELAB colour} of the parts that cover at least MIN_PART_SHARE of the person."""
    person = max(int((parts > 0).sum()), 1)
    out = {}
    for c, name in enumerate(PART_NAMES[1:], start=1):
        mask = parts == c
        if mask.sum() >= max(MIN_PART_SHARE * person, 20):
            out[name] = np.median(rgb2lab(image[mask][None])[0], axis=0)
    return out


def colour_differences(source: dict[str, np.ndarray], result: dict[str, np.ndarray]) -> dict[str, float | str]:
    """{part: CIEDE2000 ΔE} for parts found on both sides, 'lost' / 'new' for parts found on one side."""
    out: dict[str, float | str] = {}
    for name in PART_NAMES[1:]:
        if name in source and name in result:
            out[name] = float(deltaE_ciede2000(source[name], result[name]))
        elif name in source or name in result:
            out[name] = "lost" if name in source else "new"
    return out


def scored_garments(colour: dict[str, float | str]) -> dict[str, float]:
    """The garments (GARMENTS, in order) of one colour_differences row that were found on both sides."""
    return {g: colour[g] for g in GARMENTS if isinstance(colour.get(g), float)}


def texture_energy(image: np.ndarray, region: np.ndarray, person: np.ndarray) -> float | None:
    """Mean |Laplacian| of the grey image inside `region` (eroded by EDGE), after resizing the image so
    the person's bounding box is BODY_HEIGHT tall; None when the region is (nearly) empty."""
    ys = np.nonzero(person.any(1))[0]
    if len(ys) == 0:
        return None
    scale = BODY_HEIGHT / (ys[-1] - ys[0] + 1)
    size = (max(round(image.shape[1] * scale), 1), max(round(image.shape[0] * scale), 1))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mask = cv2.resize(region.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((2 * EDGE + 1,) * 2, np.uint8)).astype(bool)
    if mask.sum() < 100:
        return None
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[mask].mean())


def garment_mask(parts: np.ndarray) -> np.ndarray:
    return np.isin(parts, [PART_NAMES.index(g) for g in GARMENTS])


def texture_ratio(source, source_parts, result, result_parts) -> float | None:
    """The result's garment texture energy over the source's (None when either has no garment)."""
    s = texture_energy(source, garment_mask(source_parts), source_parts > 0)
    r = texture_energy(result, garment_mask(result_parts), result_parts > 0)
    return r / s if r is not None and s else None


def silhouette(person: np.ndarray, keypoints: np.ndarray) -> tuple[float, float] | None:
    """(share of the thick-limbed skeleton under the person mask, share of the person mask outside the
    skeleton's wide envelope); None when the keypoints give no torso."""
    limbs = skeleton_mask(keypoints, person.shape, LIMB_WIDTH)
    if limbs is None or not limbs.any():
        return None
    envelope = skeleton_mask(keypoints, person.shape, ENVELOPE_WIDTH)
    person = person.astype(bool)
    return float((limbs & person).sum() / limbs.sum()), float((person & ~envelope).sum() / max(person.sum(), 1))


# --- the evaluation ---


def cross_person_pairs(n: int, skip: int = 0) -> list[tuple[tuple, tuple]]:
    """n fixed ((source sample, keypoints), (target sample, keypoints)) pairs of different people, after
    the first `skip` (pairs no model was chosen on, when the first ones were)."""
    samples = [(s, k) for s, k in keypoint_samples() if s.split == "val" and labelled(s)]
    order = np.random.default_rng(PAIRS_SEED).permutation(len(samples))
    half = len(order) // 2  # sources and targets are disjoint sets for skip + n ≤ half
    chosen = range(skip, min(skip + n, len(order)))
    return [(samples[order[i]], samples[order[(i + half) % len(order)]]) for i in chosen]


def parser(parse):
    """parse_parts(image) → (person 0/1, parts map) from the served segmentation network, parsed as
    the pose-transfer pipeline parses its source (no CRF)."""

    def parse_parts(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        canvas, box = segmentation.prepare(image)
        person_p, fashion_p = asyncio.run(parse(canvas))
        person = segmentation.labels_from_probs(image, person_p, box)
        fashion = segmentation.labels_from_probs(image, fashion_p, box)
        return person, parts_map(person, fashion)

    return parse_parts


def summary(rows: list[dict], ms: float, model: str, mirror: list) -> dict:
    def stats(values):
        v = [x for x in values if x is not None]
        return {"mean": float(np.mean(v)), "median": float(np.median(v)), "pairs": len(v)} if v else {"pairs": 0}

    by_part = {}
    for name in PART_NAMES[1:]:
        got = [r["colour"].get(name) for r in rows]
        by_part[name] = stats([d for d in got if isinstance(d, float)]) | {
            "lost": got.count("lost"),
            "new": got.count("new"),
        }
    trusted = [r for r in rows if r["reference"] and r["reference"][0] >= TRUSTED_SKELETON]
    garment_de = [d for r in rows for d in scored_garments(r["colour"]).values()]
    mirror_scores = {
        setting: mean_image_metrics([m[i] for m in mirror]) for i, setting in enumerate(("photo", "photo_at_canvas"))
    }
    return {
        "model": model,
        "pairs": len(rows),
        "seed": PAIRS_SEED,
        "colour_delta_e": {
            "garments": stats(garment_de),
            "garments_lost": sum(r["colour"].get(g) == "lost" for r in rows for g in GARMENTS),
            "by_part": by_part,
        },
        "texture_ratio": stats([r["texture_ratio"] for r in rows]),
        "silhouette": {
            "coverage": stats([r["coverage"] for r in trusted]),
            "outside": stats([r["outside"] for r in trusted]),
            "reference_coverage": stats([r["reference"][0] for r in trusted]),
            "reference_outside": stats([r["reference"][1] for r in trusted]),
            "untrusted_skeletons": len(rows) - len(trusted),
        },
        "mirror_pose": mirror_scores,
        "ms_per_pair": ms,
        "per_pair": rows,
    }


def contact_sheet(shown: list[list[np.ndarray]], path: Path, height: int = 224) -> None:
    """Pairs as source | target photo with its skeleton | result, three pairs a row, as a JPEG."""
    gap = np.full((height, 8, 3), 255, np.uint8)
    rows = [grid([[t for pair in shown[i : i + 3] for t in (*pair, gap)]], height) for i in range(0, len(shown), 3)]
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])


async def warp_alone(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The part-wise warp as the result (white where it has no pixels): what copying alone keeps."""
    return inputs["warped"][..., :3]


def add_composite_arguments(ap: argparse.ArgumentParser) -> None:
    """The composition options of both pose-transfer evaluations (fashionpixel.pose_transfer.Composite)."""
    served = SERVED_COMPOSITE
    ap.add_argument("--canvas", action="store_true", help="the canvas result enlarged, no high-resolution warp")
    ap.add_argument("--feather", type=float, default=served.feather, help="σ (px) softening the warp's coverage")
    ap.add_argument("--erode", type=int, default=served.erode, help="px the warp's coverage is eroded")
    ap.add_argument("--threshold", type=float, default=served.threshold, help="the gate counts from this value up")
    ap.add_argument("--binary", action="store_true", default=served.binary, help="the gate 0 or 1 at the threshold")
    ap.add_argument("--fill", choices=("canvas", "painted"), default=served.fill, help="what fills under 1 − gate")
    ap.add_argument("--colour-sigma", type=float, default=served.colour_sigma, help="σ (px) of the blurred warp")
    ap.add_argument(
        "--colour-match", type=float, default=served.colour_match, help="share of the per-garment colour correction"
    )
    ap.add_argument("--match-pixels", choices=("painted", "all"), default=served.match_pixels)
    ap.add_argument(
        "--match-std", action=argparse.BooleanOptionalAction, default=served.match_std, help="match the spread too"
    )
    ap.add_argument("--match-parts", nargs="+", choices=PART_NAMES[1:], default=list(served.match_parts))
    ap.add_argument(
        "--match-lightness", type=float, default=served.match_lightness, help="× the share for L* (0: a*, b* only)"
    )
    ap.add_argument(
        "--match-sigma", type=float, default=served.match_sigma, help="σ (px) of a local colour goal (0: per part)"
    )
    ap.add_argument(
        "--match-tolerance",
        type=float,
        default=served.match_tolerance,
        help="beyond this CIELAB distance from the local goal L* comes back to it",
    )
    ap.add_argument(
        "--skirt",
        choices=["off", *SKIRT_MAPS[1:]],
        default=served.skirt or "off",
        help="a garment's leg-owned pixels move as one piece by this map (warp_to_pose's skirt)",
    )
    ap.add_argument("--skirt-parts", nargs="+", choices=PART_NAMES[1:], default=list(served.skirt_parts))
    ap.add_argument(
        "--skirt-to", choices=("ankles", "knees"), default=served.skirt_to, help="knees: the thighs' pixels only"
    )
    ap.add_argument(
        "--skirt-canvas",
        action=argparse.BooleanOptionalAction,
        default=served.skirt_canvas,
        help="the garment-aware ownership in the network's input warp too",
    )
    ap.add_argument(
        "--source-crf",
        action=argparse.BooleanOptionalAction,
        default=served.source_crf,
        help="the source's person mask refined as /v1/segment refines it (dense CRF, backdrop snap)",
    )
    ap.add_argument(
        "--source-limbs",
        type=float,
        default=served.source_limbs,
        help="with --source-crf: the network's own person kept on the limbs, this × torso length wide",
    )


def composite_from(args: argparse.Namespace) -> Composite | None:
    """The Composite the options of add_composite_arguments name (one option per field), or None (--canvas)."""
    if args.canvas:
        return None
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Composite)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}  # nargs lists → tuples
    return Composite(**values | {"skirt": "" if args.skirt == "off" else args.skirt})


def transfer_generator(network, composite: Composite | None):
    """The generator as transfer() takes it: the canvas image alone, or every head the composition needs."""
    return infer_with(network, POSE_TRANSFER, *(() if composite else ("image",)))


def composite_report(composite: Composite | None) -> dict | str:
    return composite.__dict__ if composite else "canvas"


def transfer_inline(source, target, *, network, generate, composite: Composite | None) -> np.ndarray:
    """fashionpixel.pose_transfer.transfer run to its end in this thread, as both evaluations call it."""
    return asyncio.run(
        transfer(
            source,
            target=target,
            network=network,
            generate=generate,
            cpu=inline,
            stage=untimed,
            composite=composite,
        )
    )


def evaluate(
    model: Path,
    repository: Path,
    pairs: int,
    threads: int,
    sheet: Path | None,
    warp: bool = False,
    composite: Composite | None = SERVED_COMPOSITE,
    skip: int = 0,
) -> dict:
    files = reading_files(repository) | {POSE_TRANSFER: model}
    network = onnx_network(files, threads)
    generate, composite = (warp_alone, None) if warp else (transfer_generator(network, composite), composite)
    # the metrics' own parser: the general network alone, whatever the pipeline under test reads with
    parse_parts = parser(infer_with(network, SEGMENTATION, "person", "fashion"))

    def run(source, target):
        return transfer_inline(source, target, network=network, generate=generate, composite=composite)

    rows, mirror, shown, ms = [], [], [], 0.0
    for n, ((a, _), (b, b_kp)) in enumerate(cross_person_pairs(pairs, skip)):
        source, target = read_image(a), read_image(b)
        start = time.perf_counter()
        result = run(source, target)
        ms += (time.perf_counter() - start) * 1000
        _, source_parts = parse_parts(source)
        result_person, result_parts = parse_parts(result)
        fit = silhouette(result_person, b_kp)
        rows.append(
            {
                "source": f"{a.dataset}/{a.name}",
                "target": f"{b.dataset}/{b.name}",
                "colour": colour_differences(part_colours(source, source_parts), part_colours(result, result_parts)),
                "texture_ratio": texture_ratio(source, source_parts, result, result_parts),
                "coverage": fit[0] if fit else None,
                "outside": fit[1] if fit else None,
                "reference": silhouette(read_labels(b)[0], b_kp),
            }
        )
        mirror.append(
            mirror_pose_metrics(run(source, np.ascontiguousarray(source[:, ::-1])), source, read_labels(a)[0], CANVAS_W)
        )
        if n < SHEET_PAIRS:
            skeleton = draw_pose(b_kp, target.shape[1], target.shape[0])
            posed = np.where(skeleton.any(2, keepdims=True), skeleton, target // 2 + 64)  # skeleton on a faded photo
            shown.append([source, posed.astype(np.uint8), result])
        if (n + 1) % 20 == 0:
            print(f"{n + 1}/{pairs} pairs", flush=True)
    if sheet and shown:
        contact_sheet(shown, sheet)
    name = "part-wise warp alone" if warp else os.path.relpath(model.resolve(), REPO)
    report = summary(rows, ms / max(len(rows), 1), name, mirror)
    report["composite"] = composite_report(composite)
    report["skipped_pairs"] = skip
    # the three networks' MD5s: the served files change (a new pose network changes every score)
    report["networks"] = {m.name: file_md5(f) for m, f in files.items()}
    return report


def table(report: dict) -> str:
    """The headline numbers as a Markdown table (the model card's)."""

    def cell(s, counted="pairs"):
        return f"{s['mean']:.3f} (median {s['median']:.3f}, {s['pairs']} {counted})" if s["pairs"] else "n/a"

    c, sil, m = report["colour_delta_e"], report["silhouette"], report["mirror_pose"]["photo"]
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| garment colour ΔE2000 (lower is better) | {cell(c['garments'], 'garments')} |",
        f"| garments found on the source, lost on the result | {c['garments_lost']} |",
        f"| texture ratio result / source (1 = as sharp) | {cell(report['texture_ratio'])} |",
        f"| skeleton coverage (real target photo: {sil['reference_coverage'].get('mean', 0):.3f}) | "
        f"{cell(sil['coverage'])} |",
        f"| person outside the body envelope (real: {sil['reference_outside'].get('mean', 0):.3f}) | "
        f"{cell(sil['outside'])} |",
        f"| pairs left out of the silhouette (wrong teacher skeleton) | {sil['untrusted_skeletons']} |",
        f"| mirror pose SSIM / PSNR dB ({m['photos']} sources) | {m['ssim']:.4f} / {m['psnr']:.2f} |",
        "",
        "| part | ΔE2000 mean | on both | lost | new |",
        "|---|---|---|---|---|",
    ]
    for name, s in c["by_part"].items():
        mean = f"{s['mean']:.1f}" if s["pairs"] else "n/a"
        lines.append(f"| {name} | {mean} | {s['pairs']} | {s['lost']} | {s['new']} |")
    return "\n".join(lines)


def paired_colour(before: dict, after: dict, draws: int = 5000, seed: int = 0) -> dict:
    """Two reports of the same pairs compared garment by garment: the mean garment colour ΔE of each over
    the garments both scored (a garment lost by either is left out, so neither gains by losing the hard
    ones), their ratio after / before, and its 95 % bootstrap interval over those garments."""
    rows = {(r["source"], r["target"]): r["colour"] for r in before["per_pair"]}
    if set(rows) != {(r["source"], r["target"]) for r in after["per_pair"]}:
        raise ValueError("the two reports score different pairs")
    pairs = []
    for r in after["per_pair"]:
        was = scored_garments(rows[(r["source"], r["target"])])
        pairs += [(was[g], d) for g, d in scored_garments(r["colour"]).items() if g in was]
    a, b = np.array(pairs).T
    picks = np.random.default_rng(seed).integers(0, len(a), (draws, len(a)))
    ratios = b[picks].mean(1) / a[picks].mean(1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {
        "garments": len(a),
        "before": float(a.mean()),
        "after": float(b.mean()),
        "ratio": float(b.mean() / a.mean()),
        "ratio_95": [float(low), float(high)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="compare two --json reports of the same pairs garment by garment (paired_colour) and stop",
    )
    ap.add_argument("--model", type=Path, default=POSE_TRANSFER.onnx_path(REPO / "model_repository"))
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository", help="segmentation and pose models")
    ap.add_argument("--pairs", type=int, default=80)
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="score the pairs after the first SKIP (e.g. 80: pairs no model was chosen on)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path, help="contact sheet (JPEG) of the first 12 pairs")
    ap.add_argument("--warp-only", action="store_true", help="score the part-wise warp alone, not the generator")
    add_composite_arguments(ap)
    args = ap.parse_args()
    if args.compare:
        c = paired_colour(*(json.loads(p.read_text()) for p in args.compare))
        print(
            f"garment colour ΔE over the {c['garments']} garments both scored: {c['before']:.3f} → {c['after']:.3f}, "
            f"ratio {c['ratio']:.3f} (95 % interval {c['ratio_95'][0]:.3f}-{c['ratio_95'][1]:.3f})"
        )
        return
    start = time.perf_counter()
    report = evaluate(
        args.model,
        args.repository,
        args.pairs,
        args.threads,
        args.sheet,
        args.warp_only,
        composite_from(args),
        args.skip,
    )
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(table(report))
    print(f"{report['pairs']} pairs in {report['wall_seconds']:.0f} s ({report['ms_per_pair']:.0f} ms a transfer)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
