"""Fit the general segmentation network's routing head (export/routing_head.py) and write it into the
served file, in one command:

    python -m training.fit_routing [--threads 2] [--limit N] [--dry-run]

1. Every training and validation photo (Fashionista and labelled CCP) in every framing of
   training/framing.py, through the served general network's first pass: its encoder features, and
   whether the photo passes the routing's cheap gates for either task (fashionpixel.segmentation
   .may_be_cut: the foreground reaches the top or bottom edge). For those, the label: what the pose
   network answers (fashionpixel.keypoints.cut_by_frame on its look at the whole photo), the routing
   that every accuracy report since issue 20 measured.
2. A logistic regression of that answer on the pooled features of the training photos that pass a
   gate (L2 on standardized features; the standardization is folded into the weights).
3. On the validation photos that pass a gate: how many the head decides alone (its probability at most
   SURE_WHOLE or at least SURE_CUT of fashionpixel/segmentation.py; the pose network answers the rest)
   and how many of those it decides otherwise than the pose network, per framing.
4. Writes the head into model_repository/segmentation/1/model.onnx (replacing the one there; the
   probabilities are untouched), the model's Triton configs, and docs/models/segmentation_routing.json.

Re-run it after exporting a new general segmentation network (its encoder is what the head reads), then
`python -m training quality fit` (the quality fit records the served file's MD5). About 10 minutes on
two threads.
"""

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import onnx
from scipy.optimize import minimize

from export import routing_head
from export.onnxruntime_session import onnx_session
from export.triton_config import SPECS, write_configs
from fashionpixel import keypoints, segmentation
from fashionpixel.models import POSE, SEGMENTATION
from fashionpixel.networks import as_float32, infer_with
from fashionpixel.stages import inline, untimed
from training.datasets import ccp_samples, fashionista_samples, label_maps, read_labels
from training.framing import FRAMINGS, framed_photos
from training.served import REPO, file_md5, onnx_network

# L2 weight on the standardized features: of 1e-3, 1e-2 and 1e-1, the one whose validation answers
# agreed best with the pose network's where the head decides (docs/models/segmentation_routing.md)
RIDGE = 1e-2
REPORT = REPO / "docs" / "models" / "segmentation_routing.json"


def photo_sets(split: str, limit: int | None) -> list[tuple[str, list, object]]:
    """(dataset, samples of `split`, how to read a sample's label maps with its `person` mask)."""
    return [
        ("fashionista", [s for s in fashionista_samples() if s.split == split][:limit], label_maps),
        ("ccp", [s for s in ccp_samples() if s.split == split][:limit], lambda s: {"person": read_labels(s)[0]}),
    ]


def collect(split: str, network, pose, limit: int | None) -> dict:
    """Per framed photo of `split`: pooled encoder features, the gates, the pose network's answer.
    `network`: the general network's session with its encoder as an output; `pose`: the pose network."""
    names = [*(t.name for t in SEGMENTATION.outputs[:2]), routing_head.ENCODER]
    rows = {k: [] for k in ("features", "gated", "cut", "framing", "photo")}
    start = time.perf_counter()
    for dataset, samples, read in photo_sets(split, limit):
        for framing in FRAMINGS:
            for s, image, _, _ in framed_photos(framing, samples, read):
                canvas, box = segmentation.prepare(image)
                *probs, encoder = network.run(names, {"image": canvas[None]})
                gated = any(segmentation.may_be_cut(as_float32(p[0]), box) for p in probs)
                # the label only where a gate passes: elsewhere the routing never asks
                look = asyncio.run(keypoints.look(image, infer=pose, cpu=inline, stage=untimed)) if gated else None
                rows["features"].append(routing_head.pooled(encoder)[0])
                rows["gated"].append(gated)
                rows["cut"].append(gated and keypoints.cut_by_frame(look))
                rows["framing"].append(framing)
                rows["photo"].append(f"{dataset}/{s.name}")
                if len(rows["gated"]) % 500 == 0:
                    print(f"  {split}: {len(rows['gated'])} photos, {time.perf_counter() - start:.0f} s", flush=True)
    return {k: np.array(v) for k, v in rows.items()}


def fit(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, float]:
    """Logistic regression (L2 on standardized features) → (weights, bias) on the raw features."""
    mean, scale = x.mean(0), x.std(0) + 1e-3
    z = (x - mean) / scale

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        logit = z @ w + b
        p = 1 / (1 + np.exp(-logit))
        value = np.mean(np.logaddexp(0, logit) - y * logit) + ridge / 2 * w @ w
        return value, np.append(z.T @ (p - y) / len(y) + ridge * w, np.mean(p - y))

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x
    w = theta[:-1] / scale
    return w, float(theta[-1] - w @ mean)


def probability(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ weights + bias)))


def overruled(p, cut):
    """Where the head decides alone (segmentation.head_is_sure) and otherwise than the pose network's `cut`."""
    return segmentation.head_is_sure(p) & ((p >= segmentation.SURE_CUT) != cut)


def decisions(p: np.ndarray, cut: np.ndarray) -> dict:
    """How the head's answers `p` stand against the pose network's `cut` over gated photos."""
    sure, wrong = segmentation.head_is_sure(p), overruled(p, cut)
    return {
        "gated": int(len(p)),
        "decided": int(sure.sum()),
        "decided_share": round(float(sure.mean()), 4) if len(p) else None,
        "decided_cut": int((sure & (p >= segmentation.SURE_CUT)).sum()),
        "decided_otherwise_than_pose": int(wrong.sum()),
        "pose_says_cut": int(cut.sum()),
        "accuracy_at_half": round(float(((p >= 0.5) == cut).mean()), 4) if len(p) else None,
    }


def report(rows: dict, weights: np.ndarray, bias: float, listed: bool) -> dict:
    """decisions over all gated photos and per framing; `listed`: also each disagreement."""
    p, g = probability(rows["features"], weights, bias), rows["gated"]
    per = {f: decisions(p[m], rows["cut"][m]) for f in FRAMINGS for m in [g & (rows["framing"] == f)]}
    out = {"photos": int(len(g)), "all": decisions(p[g], rows["cut"][g]), "per_framing": per, "disagreements": None}
    if listed:
        wrong = g & overruled(p, rows["cut"])
        out["disagreements"] = [
            {"photo": str(ph), "framing": str(f), "head": round(float(q), 4), "pose_says_cut": bool(c)}
            for ph, f, q, c in zip(rows["photo"][wrong], rows["framing"][wrong], p[wrong], rows["cut"][wrong])
        ]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="the first N photos of each set and split (a quick look)")
    ap.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    args = ap.parse_args(argv)
    path = SEGMENTATION.onnx_path(args.repository)
    served = routing_head.strip(onnx.load(str(path)))
    encoder = onnx_session(routing_head.with_encoder(served).SerializeToString(), args.threads)
    pose = infer_with(onnx_network({POSE: POSE.onnx_path(args.repository)}, args.threads), POSE)
    start = time.perf_counter()
    train, val = (collect(split, encoder, pose, args.limit) for split in ("train", "val"))
    g = train["gated"]
    weights, bias = fit(train["features"][g], train["cut"][g].astype(np.float64))
    result = {
        "command": "python -m training.fit_routing",
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "ridge": RIDGE,
        "sure_whole": segmentation.SURE_WHOLE,
        "sure_cut": segmentation.SURE_CUT,
        "features": int(weights.size),
        "train": report(train, weights, bias, listed=False),
        "val": report(val, weights, bias, listed=True),
    }
    print(json.dumps({k: result[k] for k in ("minutes", "features")} | {s: result[s]["all"] for s in ("train", "val")}))
    for f, d in result["val"]["per_framing"].items():
        print(f"  val {f}: {d}")
    if args.dry_run:
        return
    onnx.save(routing_head.graft(served, weights, bias), str(path))
    write_configs(SPECS[SEGMENTATION.name], args.repository)
    # the grafted graph answers as the fitted numbers do
    session = onnx_session(path, 1)
    canvas = segmentation.prepare(np.full((600, 400, 3), 128, np.uint8))[0]
    maps = encoder.run([routing_head.ENCODER], {"image": canvas[None]})[0]
    expected = probability(routing_head.pooled(maps), weights, bias)[0]
    got = float(session.run(["cut"], {"image": canvas[None]})[0][0, 0])
    assert abs(got - expected) < 2e-3, (got, expected)
    result["onnx_md5"] = file_md5(path)
    REPORT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote the head into {path} and {REPORT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
