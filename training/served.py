"""The served networks in-process (ONNX Runtime) through the registry (fashionpixel/models.py), shaped
as the pipelines of fashionpixel/ expect them; the command line of the evaluations that run those
pipelines end to end (skin generation, pose transfer) with its shop framings; and an ensemble's
prediction (several networks, ± test-time flipping) for the evaluation and the pseudo-labeller."""

import argparse
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from export.onnxruntime_session import onnx_session
from fashionpixel.models import SEGMENTATION, Model
from fashionpixel.networks import OnnxNetwork
from fashionpixel.reading import READING_MODELS
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


def file_md5(path: Path) -> str:
    """A served file's MD5: reports and the quality coefficients record which networks they measured."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def onnx_network(files: dict[Model, Path], threads: int) -> OnnxNetwork:
    """Each ONNX file in-process as the registry model it implements (e.g. a candidate cutout file)."""
    return OnnxNetwork({model.name: onnx_session(path, threads) for model, path in files.items()})


def predict(
    sessions: list, canvas: np.ndarray, mirror: bool = False, model: Model = SEGMENTATION
) -> dict[str, np.ndarray]:
    """{output: CxHxW canvas probabilities} of one network or an ensemble (± flipping), each session a
    file of `model` (segmentation or cutout: one image in), with the general segmentation network's
    routing head's `cut` when every session has it (a candidate file may not). The canvas and its
    mirror go through a session as one batch of two, not through Network (one example per call): ONNX
    Runtime's float16 outputs of a batch of two differ from two batches of one in the last digit (up
    to 5e-4), and the published numbers were made with the batch."""
    held = set.intersection(*({o.name for o in s.get_outputs()} for s in sessions))
    names = [name for name in model.output_names if name in held]
    batch = with_mirror(canvas) if mirror else canvas[None]
    results = [session.run(names, {model.inputs[0].name: batch}) for session in sessions]

    def merged(output: np.ndarray) -> np.ndarray:  # a map's mirror flipped back; a score's mean
        return (merge_mirror(output) if output.ndim == 4 else output.mean(0)) if mirror else output[0]

    return {name: average([merged(r[i]) for r in results]) for i, name in enumerate(names)}


def reading_files(repository: Path) -> dict[Model, Path]:
    """The repository's segmentation and pose models with their crop specialists: what the editing
    pipelines read a person with (fashionpixel/reading.py)."""
    return {m: m.onnx_path(repository) for m in READING_MODELS}


def reading_network(repository: Path, threads: int, extra: dict[Model, Path] | None = None) -> OnnxNetwork:
    """reading_files in-process, and `extra` files beside them."""
    return onnx_network(reading_files(repository) | (extra or {}), threads)


def framing_report(scores: dict[str, dict[str, dict]]) -> dict:
    """{framing: {setting: metrics}} as the report has it: `full` alone as it always was ({setting:
    metrics}); several framings as {framings: ..., shop: {setting: each metric's mean over the shop
    framings}} (the counts are not averaged)."""
    if list(scores) == ["full"]:
        return scores["full"]
    first = next(iter(scores.values()))
    shop = {
        setting: {
            m: shop_mean({f: s[setting][m] for f, s in scores.items()})
            for m, v in metrics.items()
            if isinstance(v, float)
        }
        for setting, metrics in first.items()
    }
    return {"framings": scores, "shop": shop}


def evaluation_command(doc: str, model: Model, pictures_help: str, evaluate: Callable) -> None:
    """`evaluate(model file, repository, limit, threads, pictures, framings)` → report, printed and optionally saved."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=model.onnx_path(REPO / "model_repository"))
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository", help="segmentation and pose models")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pictures", type=Path, help=pictures_help)
    add_framing_argument(ap)
    args = ap.parse_args()
    report = evaluate(
        args.model, args.repository, args.limit, args.threads, args.pictures, chosen_framings(args.framing)
    )
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
