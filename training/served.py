"""The served segmentation and pose networks in-process (ONNX Runtime), shaped as the multi-network
pipelines of fashionpixel/ expect them, and the command line of the evaluations that run those
pipelines end to end (skin generation, pose transfer)."""
import argparse
import contextlib
import json
from pathlib import Path
from typing import Callable

from export.onnxruntime_session import onnx_session

REPO = Path(__file__).resolve().parent.parent


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


def evaluation_command(doc: str, model: str, pictures_help: str, evaluate: Callable) -> None:
    """`evaluate(model, repository, limit, threads, pictures)` → report, printed and optionally saved."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "model_repository" / model / "1/model.onnx")
    ap.add_argument("--repository", type=Path, default=REPO / "model_repository", help="segmentation and pose models")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pictures", type=Path, help=pictures_help)
    args = ap.parse_args()
    report = evaluate(args.model, args.repository, args.limit, args.threads, args.pictures)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
