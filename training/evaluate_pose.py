"""PCK@0.1 of the exported keypoint model against the teacher keypoints of the validation photos,
at full photo size, through exactly the service's pipeline.

    python -m training.evaluate_pose --model model_repository/pose/1/model.onnx [--limit N] [--json F]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from export.onnxruntime_session import onnx_session
from fashionpixel.keypoints import SCORE_THRESHOLD, keypoints_from_heatmaps, prepare
from fashionpixel.pose import KEYPOINTS
from training.datasets import keypoint_samples, read_image
from training.metrics import pck


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


def evaluate(model: Path, limit: int | None = None, flip: bool = False,
             thresholds: tuple[float, ...] = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5), pictures: Path | None = None) -> dict:
    session = onnx_session(model)
    samples = [x for x in keypoint_samples() if x[0].split == "val"][:limit]
    preds, truths, ms = [], [], 0.0
    for sample, truth in samples:
        image = read_image(sample)
        if flip:  # the mirrored photo: the truth mirrors too, with left and right swapped
            from fashionpixel.pose import FLIP_INDEX
            image = np.ascontiguousarray(image[:, ::-1])
            truth = truth[FLIP_INDEX].copy()
            truth[truth[:, 0] >= 0, 0] = image.shape[1] - 1 - truth[truth[:, 0] >= 0, 0]
        canvas, box = prepare(image)
        start = time.perf_counter()
        (heatmaps,) = session.run(["heatmaps"], {"image": canvas[None]})
        ms += (time.perf_counter() - start) * 1000
        # threshold 0 here: every peak with its score; the thresholds are applied below
        k = keypoints_from_heatmaps(heatmaps[0], box, image.shape[1], image.shape[0], threshold=0.0)
        preds.append(k)
        truths.append(truth)
    preds, truths = np.stack(preds), np.stack(truths)
    truth_missing = truths[..., 0] < 0

    def at(threshold: float) -> tuple[dict, float]:
        found = preds[..., 2] >= threshold
        result = pck(np.where(found[..., None], preds[..., :2], -1), truths)
        return result, float((truth_missing & found).sum() / max(truth_missing.sum(), 1))

    result, false_positives = at(SCORE_THRESHOLD)
    if pictures:
        found = preds[..., 2] >= SCORE_THRESHOLD
        shown = np.where(found[..., None], preds[..., :2], -1)
        scores = [pck(shown[i:i + 1], truths[i:i + 1])["mean"] for i in range(len(preds))]
        order = np.argsort(scores)
        chosen = list(order[::-1][:3]) + list(order[:3])
        picture([(scores[i], read_image(samples[i][0]), truths[i], shown[i]) for i in chosen], pictures)
    return {"images": len(samples), "flipped": flip, "threshold": SCORE_THRESHOLD, "pck@0.1": result["mean"],
            "per_keypoint": dict(zip(KEYPOINTS, result["per_keypoint"])),
            "false_positive_rate": false_positives,
            "sweep": [{"threshold": t, "pck@0.1": at(t)[0]["mean"], "false_positive_rate": at(t)[1]} for t in thresholds],
            "ms_per_image": round(ms / max(len(samples), 1), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("model_repository/pose/1/model.onnx"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--flip", action="store_true", help="evaluate on mirrored photos")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pictures", type=Path, help="write the 3 best and 3 worst photos to this PNG")
    args = ap.parse_args()
    report = evaluate(args.model, args.limit, args.flip, pictures=args.pictures)
    print(f"{report['images']} validation photos{' (mirrored)' if args.flip else ''}: "
          f"PCK@0.1 {report['pck@0.1']:.4f}, false positives on missing keypoints "
          f"{report['false_positive_rate']:.3f}, network {report['ms_per_image']} ms")
    for row in report["sweep"]:
        print(f"  threshold {row['threshold']:.2f}: PCK@0.1 {row['pck@0.1']:.4f}, false positives {row['false_positive_rate']:.3f}")
    for name, v in report["per_keypoint"].items():
        print(f"  {name:<15} {v:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
