"""The served segmentation and pose networks in-process (ONNX Runtime), shaped as the multi-network
pipelines of fashionpixel/ expect them, and the command line of the evaluations that run those
pipelines end to end (skin generation, pose transfer) with its shop framings, and an ensemble's
prediction (several networks, ± test-time flipping) for the evaluation and the pseudo-labeller."""
import argparse
import contextlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from export.onnxruntime_session import onnx_session
from training.framing import add_framing_argument, chosen_framings, shop_mean

REPO = Path(__file__).resolve().parent.parent


def average(probs: list[np.ndarray]) -> np.ndarray:
    """An ensemble's answer: the mean of its networks' probabilities (one network: unchanged)."""
    return probs[0] if len(probs) == 1 else np.mean([p.astype(np.float32) for p in probs], axis=0)


def with_mirror(canvas: np.ndarray) -> np.ndarray:
    """Test-time flip: the canvas and its mirror image as one batch of two (one network call)."""
    return np.stack([canvas, canvas[:, ::-1]])


def merge_mirror(probs: np.ndarray) -> np.ndarray:
    """Average a with_mirror batch's 2xCxHxW probabilities into one CxHxW (the classes have no left/right)."""
    return (probs[0].astype(np.float32) + probs[1, :, :, ::-1].astype(np.float32)) / 2


def predict(sessions: list, canvas: np.ndarray, mirror: bool = False,
            outputs: tuple[str, ...] = ("person", "fashion")) -> dict[str, np.ndarray]:
    """{output: CxHxW canvas probabilities} of one network or an ensemble (± flipping)."""
    batch = with_mirror(canvas) if mirror else canvas[None]
    results = [session.run(list(outputs), {"image": batch}) for session in sessions]
    return {name: average([merge_mirror(r[i]) if mirror else r[i][0] for r in results])
            for i, name in enumerate(outputs)}


def parse_and_pose(repository: Path, threads: int):
    """(parse, pose) async callables over the repository's segmentation and pose models."""
    seg = onnx_session(repository / "segmentation/1/model.onnx", threads)
    pose = onnx_session(repository / "pose/1/model.onnx", threads)

    async def parse(canvas):
        person, fashion = seg.run(["person", "fashion"], {"image": canvas[None]})
        return person[0], fashion[0]

    async def heatmaps(canvas):
        return pose.run(["heatmaps"], {"image": canvas[None]})[0][0]
    return parse, heatmaps


async def inline(fn, *args):
    """The pipelines' `cpu`: here simply a call (no event loop to keep free)."""
    return fn(*args)


def untimed(_stage: str):
    return contextlib.nullcontext()


def framing_report(scores: dict[str, dict[str, dict]]) -> dict:
    """{framing: {setting: metrics}} as the report has it: `full` alone as it always was ({setting:
    metrics}); several framings as {framings: ..., shop: {setting: each metric's mean over the shop
    framings}} (the counts are not averaged)."""
    if list(scores) == ["full"]:
        return scores["full"]
    first = next(iter(scores.values()))
    shop = {setting: {m: shop_mean({f: s[setting][m] for f, s in scores.items()})
                      for m, v in metrics.items() if isinstance(v, float)} for setting, metrics in first.items()}
    return {"framings": scores, "shop": shop}


def evaluation_command(doc: str, model: str, pictures_help: str, evaluate: Callable) -> None:
    """`evaluate(model, repository, limit, threads, pictures, framings)` → report, printed and optionally saved."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "model_repository" / model / "1/model.onnx")
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository", help="segmentation and pose models")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pictures", type=Path, help=pictures_help)
    add_framing_argument(ap)
    args = ap.parse_args()
    report = evaluate(args.model, args.repository, args.limit, args.threads, args.pictures,
                      chosen_framings(args.framing))
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
