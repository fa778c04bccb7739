"""Evaluate pose transfer: every validation person rendered in their mirrored pose.

    python -m training.evaluate_pose_transfer [--model F] [--limit N] [--json F] [--pictures F]
    python -m training.evaluate_pose_transfer --framing all --json docs/models/pose_transfer_framings.json
    python -m training.evaluate_pose_transfer --canvas     # the canvas result enlarged (no composition)

`photo` composes the result at the output's resolution as the service does (SERVED_COMPOSITE); the
composition options of training/evaluate_cross_person.py (--canvas, --feather, --erode, --threshold,
--fill, --colour-sigma, and the colour correction's --colour-match, --match-pixels, --match-std,
--match-lightness, --match-parts, --match-sigma, --match-tolerance, and the garment-aware warp's --skirt,
--skirt-parts, --skirt-to, --skirt-canvas) change it.

Two settings, both compared with the mirrored person on white (labelled person mask):
- `canvas_labelled`: the generator alone on the 128×192 canvas, given the labelled parsing and the
  teacher keypoints (mirrored for the target): the generator's own error. Also the mean absolute
  error per part (by the target's labelled parts) to show which parts are hard.
- `photo`: the service's pipeline (fashionpixel.pose_transfer.transfer) at full size, with the
  served segmentation and pose models; the target is the mirrored photo, whose pose the pose model
  estimates. Scored at full size and, to separate resolution from rendering, at canvas size
  (`photo_at_canvas`: output and truth both shrunk to the generator's 128×192).
SSIM is scikit-image's on RGB, PSNR on [0, 1] intensities; means over photos.

`--framing` (training/framing.py) runs `photo` and `photo_at_canvas` in shop framings: the framed
photo is the source, its mirror image the target, and the truth the framed labelled person
mirrored on white. The report then has them under `framings` and `shop` (their means over the
shop framings). `canvas_labelled` stays on the full photos: it scores the generator on the cached
canvas set, whose labelled parsing and keypoints are not framed. Whole-image scores are mostly the
white around the person in `small`, which therefore scores high.
"""

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from fashionpixel.labels import FASHION_PALETTE
from fashionpixel.models import POSE_TRANSFER
from fashionpixel.networks import OnnxNetwork
from fashionpixel.pose_transfer import CANVAS_H, CANVAS_W, PART_NAMES, SERVED_COMPOSITE, Composite
from training.datasets import keypoint_samples, label_maps
from training.evaluate_cross_person import (
    add_composite_arguments,
    composite_from,
    composite_report,
    transfer_generator,
    transfer_inline,
)
from training.framing import framed_photos
from training.metrics import image_metrics, mean_image_metrics, mirror_pose_metrics
from training.pose_transfer_data import build, mirror_pairs
from training.served import evaluation_command, framing_report, onnx_network, reading_network
from training.skin_data import grid, labelled

PART_COLOURS = np.vstack([FASHION_PALETTE, [[150, 150, 150]]]).astype(np.uint8)  # + other clothing


def generator(network: OnnxNetwork):
    """The generator on whole batches, not one example at a time through Network: the canvas set goes
    16 at a time, as its published scores were made."""
    session, names = network.sessions[POSE_TRANSFER.name], list(POSE_TRANSFER.output_names)

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        """inputs with a batch axis → N×H×W×3 uint8."""
        return session.run(names, inputs)[0]

    return run


def canvas_scores(gen, data: dict, pictures: list) -> dict:
    inputs, targets, target_parts = mirror_pairs(data)
    rows, errors = [], {name: [] for name in PART_NAMES[1:]}
    for s in range(0, len(targets), 16):
        fake = gen({k: v[s : s + 16] for k, v in inputs.items()})
        for j, (f, y, p) in enumerate(zip(fake, targets[s : s + 16], target_parts[s : s + 16])):
            rows.append(image_metrics(f, y))
            err = np.abs(f.astype(np.float32) - y.astype(np.float32)).mean(2)
            for c, name in enumerate(PART_NAMES[1:], start=1):
                if (p == c).sum() >= 20:
                    errors[name].append(float(err[p == c].mean()))
            if len(pictures) < 6 and s + j in (0, 3, 7, 12, 21, 33):
                i = s + j
                pictures.append(
                    [
                        inputs["source"][i],
                        PART_COLOURS[inputs["parts"][i][..., 0]],
                        inputs["pose"][i].max(2),
                        inputs["warped"][i][..., :3],
                        f,
                        y,
                    ]
                )
    mse, psnr, ssim = np.mean(rows, axis=0)
    return {
        "photos": len(rows),
        "mse": float(mse),
        "psnr": float(psnr),
        "ssim": float(ssim),
        "mean_abs_error_by_part": {k: round(float(np.mean(v)), 2) for k, v in errors.items() if v},
    }


def photo_scores(
    generate,
    repository: Path,
    limit: int | None,
    threads: int,
    framings: tuple[str, ...],
    composite: Composite | None = SERVED_COMPOSITE,
) -> tuple[dict[str, dict], float]:
    """{framing: {photo, photo_at_canvas}} and the end-to-end ms per photo (`generate`: the generator as
    the pipeline calls it, `composite` as transfer takes it)."""
    network = reading_network(repository, threads)

    samples = [s for s, _ in keypoint_samples() if s.split == "val" and labelled(s)][:limit]
    scores, ms = {}, 0.0
    for framing in framings:
        full, small = [], []
        for n, (_, image, labels, _) in enumerate(framed_photos(framing, samples, label_maps)):
            mirrored = np.ascontiguousarray(image[:, ::-1])
            start = time.perf_counter()
            out = transfer_inline(image, mirrored, network=network, generate=generate, composite=composite)
            ms += (time.perf_counter() - start) * 1000
            at_full, at_canvas = mirror_pose_metrics(out, image, labels["person"], CANVAS_W)
            full.append(at_full)
            small.append(at_canvas)
            if (n + 1) % 40 == 0:
                print(f"{framing}: {n + 1}/{len(samples)} photos", flush=True)
        scores[framing] = {"photo": mean_image_metrics(full), "photo_at_canvas": mean_image_metrics(small)}
    return scores, ms / max(len(samples) * len(framings), 1)


def evaluate(
    model: Path,
    repository: Path,
    limit: int | None,
    threads: int,
    pictures: Path | None,
    framings: tuple[str, ...] = ("full",),
    composite: Composite | None = SERVED_COMPOSITE,
) -> dict:
    network = onnx_network({POSE_TRANSFER: model}, threads)
    val = build("val")
    if limit:
        val = {k: v[:limit] for k, v in val.items()}
    shown: list = []
    report = {"model": str(model), "canvas_labelled": canvas_scores(generator(network), val, shown)}
    scores, ms = photo_scores(transfer_generator(network, composite), repository, limit, threads, framings, composite)
    report |= framing_report(scores)
    report["composite"] = composite_report(composite)
    report["ms_per_photo_end_to_end"] = ms
    if pictures and shown:
        pictures.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(pictures), cv2.cvtColor(grid(shown, height=CANVAS_H), cv2.COLOR_RGB2BGR))
    return report


if __name__ == "__main__":
    # the composition options first; the shared evaluation command parses the rest
    options = argparse.ArgumentParser(add_help=False)
    add_composite_arguments(options)
    chosen, sys.argv[1:] = options.parse_known_args()
    evaluation_command(
        __doc__,
        POSE_TRANSFER,
        "source | parts | target pose | warp | generated | mirrored truth, 6 validation people",
        partial(evaluate, composite=composite_from(chosen)),
    )
