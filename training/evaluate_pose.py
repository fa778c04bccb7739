"""PCK@0.1 of the exported keypoint model against the teacher keypoints of the validation photos,
at full photo size, through exactly the service's pipeline.

    python -m training.evaluate_pose --model model_repository/pose/1/model.onnx [--limit N] [--json F]
    python -m training.evaluate_pose --framing all --json docs/models/pose_framings.json

`--framing` (training/framing.py) scores the photos in shop framings instead: each framing's PCK@0.1
at the served score threshold, on the keypoints still in the frame (the teacher's keypoints move
with the photo; those that leave it no longer count), and `shop`, the mean over the shop framings.
Framings crop and paste by the labelled person, so they use the labelled validation photos
(Fashionista + labelled CCP); `full` alone keeps every validation photo with keypoints, the
published number. `--pictures` draws full photos only. The service's focus pass (a second look at a
small person, fashionpixel.keypoints) is on, as it is by default; `--no-focus` turns it off.
`--crops MODEL` adds the service's crop specialist (fashionpixel.keypoints.cut_by_frame routes to it).
"""

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from fashionpixel.keypoints import SCORE_THRESHOLD
from fashionpixel.keypoints import estimate as pipeline_estimate
from fashionpixel.models import POSE, POSE_CROPS
from fashionpixel.networks import infer_with
from fashionpixel.pose import KEYPOINTS
from fashionpixel.stages import inline, untimed
from training.datasets import keypoint_samples, label_maps, read_image
from training.framing import add_framing_argument, chosen_framings, framed_photos, shop_mean
from training.metrics import pck
from training.served import onnx_network
from training.skin_data import labelled


def picture(cases: list[tuple], path: Path) -> None:
    """Rows of (teacher | ours) drawn over the photo, each row labelled with its PCK."""
    import cv2

    from fashionpixel.pose import draw_pose

    tiles = []
    for score, image, truth, pred in cases:
        h, w = image.shape[:2]
        pair = []
        for k in (truth, pred):
            limbs = draw_pose(k, w, h)
            pair.append(np.where(limbs.any(2, keepdims=True), limbs, image // 2 + 64))
        row = np.hstack(pair)
        row = cv2.resize(row, (row.shape[1] * 300 // h, 300), interpolation=cv2.INTER_AREA)
        cv2.putText(row, f"PCK {score:.2f}", (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        tiles.append(row)
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    half = (len(tiles) + 1) // 2
    cols = [np.vstack(tiles[:half]), np.vstack(tiles[half:] + [np.zeros_like(tiles[0])] * (2 * half - len(tiles)))]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.hstack(cols), cv2.COLOR_RGB2BGR))


def mirror(image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mirrored photo: the truth mirrors too, with left and right swapped."""
    from fashionpixel.pose import FLIP_INDEX

    image = np.ascontiguousarray(image[:, ::-1])
    truth = truth[FLIP_INDEX].copy()
    truth[truth[:, 0] >= 0, 0] = image.shape[1] - 1 - truth[truth[:, 0] >= 0, 0]
    return image, truth


def estimate(infer, photos, flip: bool, focus: bool = True, infer_crops=None) -> tuple[np.ndarray, np.ndarray, float]:
    """N×18×3 keypoints (x, y, score) of (photo, teacher keypoints) pairs through the service's pipeline,
    mirrored with `flip`, their N×18×2 truths and the pipeline's total ms (`infer`: the pose network as
    the pipelines call it). Threshold 0 here: every peak with its score, so that the thresholds can be
    applied afterwards. `infer_crops`: the crop specialist, routed to as the service does."""
    preds, truths, ms = [], [], 0.0
    for image, truth in photos:
        if flip:
            image, truth = mirror(image, truth)
        start = time.perf_counter()
        found = pipeline_estimate(
            image, infer=infer, cpu=inline, stage=untimed, focus=focus, threshold=0.0, infer_crops=infer_crops
        )
        preds.append(asyncio.run(found))
        ms += (time.perf_counter() - start) * 1000
        truths.append(truth)
    return np.stack(preds), np.stack(truths), ms


def at(preds: np.ndarray, truths: np.ndarray, threshold: float) -> tuple[dict, float]:
    """PCK with the peaks scoring >= threshold, and the share of the teacher's missing keypoints found anyway."""
    found = preds[..., 2] >= threshold
    missing = truths[..., 0] < 0
    result = pck(np.where(found[..., None], preds[..., :2], -1), truths)
    return result, float((missing & found).sum() / max(missing.sum(), 1))


def in_framings(infer, framings: tuple[str, ...], limit: int | None, flip: bool, focus: bool, infer_crops=None) -> dict:
    """PCK@0.1 in each framing, on the labelled validation photos (the framings need the person mask)."""
    samples = [s for s, _ in keypoint_samples() if s.split == "val" and labelled(s)][:limit]
    report = {}
    for name in framings:
        photos = ((image, truth) for _, image, _, truth in framed_photos(name, samples, label_maps))
        preds, truths, ms = estimate(infer, photos, flip, focus, infer_crops)
        result, false_positives = at(preds, truths, SCORE_THRESHOLD)
        report[name] = {
            "images": len(samples),
            "keypoints": int((truths[..., 0] >= 0).sum()),
            "pck@0.1": result["mean"],
            "per_keypoint": dict(zip(KEYPOINTS, result["per_keypoint"])),
            "false_positive_rate": false_positives,
            "ms_per_image": round(ms / max(len(samples), 1), 1),
        }
        print(f"{name}: PCK@0.1 {result['mean']:.4f} on {report[name]['keypoints']} keypoints in the frame", flush=True)
    return {
        "images": len(samples),
        "flipped": flip,
        "focus": focus,
        "threshold": SCORE_THRESHOLD,
        "framings": report,
        "shop": {"pck@0.1": shop_mean({k: v["pck@0.1"] for k, v in report.items()})},
    }


def evaluate(
    model: Path,
    limit: int | None = None,
    flip: bool = False,
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5),
    pictures: Path | None = None,
    framings: tuple[str, ...] = ("full",),
    threads: int = 2,
    focus: bool = True,
    crops: Path | None = None,
) -> dict:
    network = onnx_network({POSE: model} | ({POSE_CROPS: crops} if crops else {}), threads)
    infer, infer_crops = infer_with(network, POSE), infer_with(network, POSE_CROPS) if crops else None
    if framings != ("full",):
        return in_framings(infer, framings, limit, flip, focus, infer_crops) | {"crops": str(crops)}
    samples = [x for x in keypoint_samples() if x[0].split == "val"][:limit]
    preds, truths, ms = estimate(infer, ((read_image(s), truth) for s, truth in samples), flip, focus, infer_crops)
    result, false_positives = at(preds, truths, SCORE_THRESHOLD)
    if pictures:
        found = preds[..., 2] >= SCORE_THRESHOLD
        shown = np.where(found[..., None], preds[..., :2], -1)
        scores = [pck(shown[i : i + 1], truths[i : i + 1])["mean"] for i in range(len(preds))]
        order = np.argsort(scores)
        chosen = list(order[::-1][:3]) + list(order[:3])
        picture([(scores[i], read_image(samples[i][0]), truths[i], shown[i]) for i in chosen], pictures)
    return {
        "images": len(samples),
        "flipped": flip,
        "focus": focus,
        "crops": str(crops),
        "threshold": SCORE_THRESHOLD,
        "pck@0.1": result["mean"],
        "per_keypoint": dict(zip(KEYPOINTS, result["per_keypoint"])),
        "false_positive_rate": false_positives,
        "sweep": [
            {"threshold": t, "pck@0.1": at(preds, truths, t)[0]["mean"], "false_positive_rate": at(preds, truths, t)[1]}
            for t in thresholds
        ],
        "ms_per_image": round(ms / max(len(samples), 1), 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=POSE.onnx_path(Path("model_repository")))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--flip", action="store_true", help="evaluate on mirrored photos")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pictures", type=Path, help="write the 3 best and 3 worst photos to this PNG")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-focus", action="store_true", help="without the service's focus pass on a small person")
    ap.add_argument("--crops", type=Path, help="the crop specialist's ONNX file, routed to as the service does")
    add_framing_argument(ap)
    args = ap.parse_args()
    report = evaluate(
        args.model,
        args.limit,
        args.flip,
        pictures=args.pictures,
        framings=chosen_framings(args.framing),
        threads=args.threads,
        focus=not args.no_focus,
        crops=args.crops,
    )
    if "framings" in report:
        print(
            f"{report['images']} labelled validation photos{' (mirrored)' if args.flip else ''}: "
            f"shop PCK@0.1 {report['shop']['pck@0.1']:.4f}"
        )
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return
    print(
        f"{report['images']} validation photos{' (mirrored)' if args.flip else ''}: "
        f"PCK@0.1 {report['pck@0.1']:.4f}, false positives on missing keypoints "
        f"{report['false_positive_rate']:.3f}, network {report['ms_per_image']} ms"
    )
    for row in report["sweep"]:
        print(
            f"  threshold {row['threshold']:.2f}: PCK@0.1 {row['pck@0.1']:.4f}, false positives {row['false_positive_rate']:.3f}"
        )
    for name, v in report["per_keypoint"].items():
        print(f"  {name:<15} {v:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
