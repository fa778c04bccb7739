"""PCK@0.1 of the exported keypoint model against the teacher keypoints of the validation photos,
at full photo size, through exactly the service's pipeline.

    python -m training.evaluate_pose --model model_repository/pose/1/model.onnx [--limit N] [--json F]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fashionpixel.keypoints import keypoints_from_heatmaps, prepare
from fashionpixel.pose import KEYPOINTS
from training.datasets import keypoint_samples, read_image
from training.metrics import pck


def evaluate(model: Path, limit: int | None = None, flip: bool = False) -> dict:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
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
        k = keypoints_from_heatmaps(heatmaps[0], box, image.shape[1], image.shape[0])
        preds.append(np.where(k[:, 2:3] > 0, k[:, :2], -1))
        truths.append(truth)
    result = pck(np.stack(preds), np.stack(truths))
    truth_missing = np.stack(truths)[..., 0] < 0
    pred_found = np.stack(preds)[..., 0] >= 0
    return {"images": len(samples), "flipped": flip, "pck@0.1": result["mean"],
            "per_keypoint": dict(zip(KEYPOINTS, result["per_keypoint"])),
            "false_positive_rate": float((truth_missing & pred_found).sum() / max(truth_missing.sum(), 1)),
            "ms_per_image": round(ms / max(len(samples), 1), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("model_repository/pose/1/model.onnx"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--flip", action="store_true", help="evaluate on mirrored photos")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report = evaluate(args.model, args.limit, args.flip)
    print(f"{report['images']} validation photos{' (mirrored)' if args.flip else ''}: "
          f"PCK@0.1 {report['pck@0.1']:.4f}, false positives on missing keypoints "
          f"{report['false_positive_rate']:.3f}, network {report['ms_per_image']} ms")
    for name, v in report["per_keypoint"].items():
        print(f"  {name:<15} {v:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
