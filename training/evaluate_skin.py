"""Evaluate skin generation on the validation photos at full size, end to end as the service runs it.

    python -m training.evaluate_skin [--model model_repository/skin/1/model.onnx] [--limit N] [--json F] [--pictures F]
    python -m training.evaluate_skin --framing all --json docs/models/skin_framings.json

Three settings: `photo` derives everything from the photo with the served segmentation and pose
models (fashionpixel.skin.regenerate, the service's exact pipeline); `photo_labelled_silhouette` is the
same output with the labelled person as alpha (the silhouette is the segmentation's job, not the
generator's); `oracle` is also given the labelled skin region and the teacher keypoints, to separate
the generator's error from the parsing's and the pose's. The output (RGBA) is flattened on white and compared with the original person on white
(the labelled person mask): MSE and PSNR on [0, 1] intensities, SSIM (scikit-image, RGB); means over
photos. Fashionista and CCP validation photos with labels and keypoints.

`--framing` (training/framing.py) measures the same in shop framings: the photo, its labels and
teacher keypoints framed together, so the target is the framed person on white. The report then has
every framing's settings under `framings` and `shop`, their means over the shop framings;
`--pictures` shows the first framing's photos. Whole-image scores favour framings where the person
is small, and where the served parsing finds no body skin nothing is regenerated, so
`photo_labelled_silhouette` is then exact (PSNR at its 100 dB cap): frequent in `small`, whose
PSNR means (and the shop's) read high for it.
"""

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np

from fashionpixel.models import SKIN
from fashionpixel.networks import infer_with
from fashionpixel.skin import SKIN_CLASS, body_skin, network_input, paste, person_on_white, regenerate
from fashionpixel.stages import inline, untimed
from training.datasets import keypoint_samples, label_maps
from training.framing import framed_photos
from training.metrics import image_metrics
from training.served import evaluation_command, framing_report, reading_network
from training.skin_data import grid, labelled


def flatten(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:].astype(np.float32) / 255
    return np.round(rgba[..., :3] * a + 255 * (1 - a)).astype(np.uint8)


def evaluate(
    model: Path,
    repository: Path,
    limit: int | None,
    threads: int,
    pictures: Path | None,
    framings: tuple[str, ...] = ("full",),
) -> dict:
    network = reading_network(repository, threads, {SKIN: model})
    generate = infer_with(network, SKIN)

    def run(image):
        return asyncio.run(
            regenerate(
                image,
                keypoints=None,
                region=None,
                network=network,
                generate=generate,
                cpu=inline,
                stage=untimed,
            )
        )

    samples = [s for s, _ in keypoint_samples() if s.split == "val" and labelled(s)][:limit]
    ms, shown, per_framing = 0.0, [], {}
    for framing in framings:
        scores = {"photo": [], "photo_labelled_silhouette": [], "oracle": []}
        for n, (s, image, labels, k) in enumerate(framed_photos(framing, samples, label_maps)):
            person = labels["person"].astype(bool)
            target = person_on_white(image, person)
            start = time.perf_counter()
            out = run(image)
            ms += (time.perf_counter() - start) * 1000
            scores["photo"].append(image_metrics(flatten(out), target))
            out[..., 3] = person * 255
            scores["photo_labelled_silhouette"].append(image_metrics(flatten(out), target))
            # oracle: the generator alone on labelled inputs (no segmentation or CRF run a second time)
            region = body_skin(labels["fashion"] == SKIN_CLASS, person, k)
            x, box = network_input(image, person, region, k)
            oracle = paste(image, asyncio.run(generate(x)), box, region, person)
            scores["oracle"].append(image_metrics(flatten(oracle), target))
            if pictures and len(shown) < 4 and region.mean() > 0.02:
                marked = np.where(region[..., None], 255, image).astype(np.uint8)
                shown.append([image, marked, flatten(oracle), target])
            if (n + 1) % 40 == 0:
                print(f"{framing}: {n + 1}/{len(samples)} photos", flush=True)
        per_framing[framing] = {
            name: dict(zip(("mse", "psnr", "ssim"), map(float, np.mean(rows, axis=0)))) for name, rows in scores.items()
        }
    if pictures and shown:
        pictures.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(pictures), cv2.cvtColor(grid(shown, height=300), cv2.COLOR_RGB2BGR))
    return {
        "model": str(model),
        "photos": len(samples),
        "ms_per_photo_end_to_end": ms / max(len(samples) * len(framings), 1),
    } | framing_report(per_framing)


if __name__ == "__main__":
    evaluation_command(
        __doc__, SKIN, "photo | labelled skin region (white) | generated (oracle) | original, 4 photos", evaluate
    )
