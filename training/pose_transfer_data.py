"""The pose-transfer training data: (source, target pose, target image) made from one photo per person.

    python -m training.dataset_pictures pose-transfer --pictures docs/models/img/pose_transfer_inputs.png

The shared data has one pose per person, so pairs are made from that one photo (see
docs/models/pose-transfer.md for what worked):
- mirror: the target is the horizontally mirrored photo, a real new pose whose true image is known;
- geometry: the target is the photo (or its mirror) under a random scale, shift and small rotation;
- reconstruction: the target is the source itself.
Pairs across people (cross_batch) have no true image; they only carry each garment's colour (issue 25).
Every labelled Fashionista and CCP photo with teacher keypoints is cached once on the canvas as the
person on white, its parts and its keypoints. DeepFashion pairs (real pose pairs) are read by
training.datasets.parse_pairs_csv / parse_keypoint_csv for anyone who holds those images.
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fashionpixel.models import SEGMENTATION
from fashionpixel.networks import infer_with
from fashionpixel.pose_transfer import (
    CANVAS_H,
    CANVAS_W,
    WHITE,
    found,
    inputs_around_warp,
    mirror,
    network_inputs,
    source_canvas,
    warp_to_pose,
)
from training.datasets import (
    DATA_DIR,
    cached,
    keypoint_samples,
    parse_keypoint_csv,
    parse_pairs_csv,
    read_image,
    read_labels,
)
from training.skin_data import labelled

MODES = ("mirror", "geometry", "reconstruction")
MODE_P = (0.5, 0.35, 0.15)
DEEPFASHION = DATA_DIR / "deepfashion_samples"
DEEPFASHION_SIZE = (176, 256)  # (width, height) of the "fashion-resize" images the annotations refer to
VAL_PAIRS_SEED = 1234


def build(split: str) -> dict[str, np.ndarray]:
    """Cached canvases of one split: images N×H×W×3, parts N×H×W, keypoints N×18×2 (-1 = missing)."""
    samples = [(s, k) for s, k in keypoint_samples() if s.split == split and labelled(s)]

    def make():
        rows = [source_canvas(read_image(s), *read_labels(s), k) for s, k in samples]
        return {
            "images": np.stack([r[0] for r in rows]),
            "parts": np.stack([r[1] for r in rows]),
            "keypoints": np.stack([r[2] for r in rows]).astype(np.float32),
        }

    return cached(f"posetransfer_{CANVAS_W}x{CANVAS_H}", [s for s, _ in samples], make)


def random_geometry(image, parts, keypoints, rng: np.random.Generator):
    """Scale 0.8–1.15, shift ±8 %, rotation ±12° about the canvas centre (white outside)."""
    angle, scale = rng.uniform(-12, 12), rng.uniform(0.8, 1.15)
    m = cv2.getRotationMatrix2D((CANVAS_W / 2, CANVAS_H / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * (CANVAS_W, CANVAS_H)
    image = cv2.warpAffine(image, m, (CANVAS_W, CANVAS_H), flags=cv2.INTER_LINEAR, borderValue=(WHITE,) * 3)
    parts = cv2.warpAffine(parts, m, (CANVAS_W, CANVAS_H), flags=cv2.INTER_NEAREST, borderValue=0)
    k = keypoints.copy()
    ok = found(k)
    k[ok] = k[ok] @ m[:, :2].T + m[:, 2]
    inside = (k[:, 0] >= 0) & (k[:, 0] < CANVAS_W) & (k[:, 1] >= 0) & (k[:, 1] < CANVAS_H)
    k[~(ok & inside)] = -1
    return image, parts, k


def pair(data: dict, i: int, mode: str, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    """(generator inputs, target image, target parts) of photo i in one pairing mode."""
    image, parts, k = data["images"][i], data["parts"][i], data["keypoints"][i]
    if rng.random() < 0.5:  # either side can be the source
        image, parts, k = mirror(image, parts, k)
    target = (image, parts, k)
    if mode == "mirror" or (mode == "geometry" and rng.random() < 0.5):
        target = mirror(*target)
    if mode == "geometry":
        target = random_geometry(*target, rng)
    return network_inputs(image, parts, k, target[2]), target[0], target[1]


def batch(data: dict, indices, rng: np.random.Generator, mode: str | None = None):
    """Stacked inputs (dict of N×H×W×C uint8), targets N×H×W×3 and target parts N×H×W."""
    rows = [pair(data, i, mode or rng.choice(MODES, p=MODE_P), rng) for i in indices]
    inputs = {k: np.stack([r[0][k] for r in rows]) for k in rows[0][0]}
    return inputs, np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows])


def cross_batch(data: dict, n: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """n pairs of two different people, person i in person j's pose (either side mirrored at random):
    stacked inputs as batch() makes them, and per result pixel the source part the warp carries there
    (N×H×W, 0 where it carries none). There is no true image; the carried parts say where each garment
    of the source lands, so a loss can ask the result to keep its colour (training.losses.part_colour_loss)."""
    count = len(data["images"])
    rows = []
    for i in rng.integers(0, count, n):
        j = (i + rng.integers(1, count)) % count
        image, parts, k = data["images"][i], data["parts"][i], data["keypoints"][i]
        if rng.random() < 0.5:
            image, parts, k = mirror(image, parts, k)
        target_kp = data["keypoints"][j]
        if rng.random() < 0.5:
            target_kp = mirror(data["images"][j], data["parts"][j], target_kp)[2]
        warped, cover, carried = warp_to_pose(image, parts, k, target_kp, labels=True)
        rows.append((inputs_around_warp(image, parts, target_kp, warped, cover), carried))
    return {key: np.stack([r[0][key] for r in rows]) for key in rows[0][0]}, np.stack([r[1] for r in rows])


@dataclass(frozen=True)
class RealPair:
    """One DeepFashion pair: the same person in two poses (keypoints in each image's pixels)."""

    source: Path
    source_kp: np.ndarray
    target: Path
    target_kp: np.ndarray


def mirror_pairs(data: dict):
    """Every photo of `data` to its mirrored pose, the same pairs on every call (validation, evaluation)."""
    return batch(data, range(len(data["images"])), np.random.default_rng(VAL_PAIRS_SEED), "mirror")


def deepfashion_pairs(
    images: Path,
    annotations: Path = DEEPFASHION / "fashion-resize-annotation-test.csv",
    pairs: Path = DEEPFASHION / "fashion-resize-pairs-test.csv",
) -> tuple[list[RealPair], dict]:
    """The pairs of ADGAN's CSVs whose two images are in `images`, and counts of the pairs left out."""
    table = parse_keypoint_csv(annotations)
    out, skipped = [], {"no_keypoints": 0, "no_image": 0}
    for a, b in parse_pairs_csv(pairs):
        if a not in table or b not in table:
            skipped["no_keypoints"] += 1
        elif not ((images / a).exists() and (images / b).exists()):
            skipped["no_image"] += 1
        else:
            out.append(RealPair(images / a, table[a], images / b, table[b]))
    return out, skipped


def build_real_pairs(pairs: list[RealPair], parse) -> dict[str, np.ndarray]:
    """Canvas arrays of real pairs. DeepFashion has no parsing labels here, so `parse(image)` →
    (person, fashion) label maps (the served segmentation model) stands in for them."""

    def canvas(path: Path, kp: np.ndarray):
        image = np.asarray(Image.open(path).convert("RGB"))
        k = kp.copy()
        ok = found(k)
        k[ok] *= (image.shape[1] / DEEPFASHION_SIZE[0], image.shape[0] / DEEPFASHION_SIZE[1])
        return source_canvas(image, *parse(image), k)

    rows = [(canvas(p.source, p.source_kp), canvas(p.target, p.target_kp)) for p in pairs]
    return {
        "images": np.stack([s[0] for s, _ in rows]),
        "parts": np.stack([s[1] for s, _ in rows]),
        "keypoints": np.stack([s[2] for s, _ in rows]).astype(np.float32),
        "target_images": np.stack([t[0] for _, t in rows]),
        "target_parts": np.stack([t[1] for _, t in rows]),
        "target_keypoints": np.stack([t[2] for _, t in rows]).astype(np.float32),
    }


def segmentation_parser(model: Path):
    """parse(image) → (person, fashion) full-size label maps, with the segmentation model in ONNX Runtime."""
    from fashionpixel import segmentation
    from training.served import onnx_network

    probabilities = infer_with(onnx_network({SEGMENTATION: model}, threads=2), SEGMENTATION, "person", "fashion")

    def parse(image: np.ndarray):
        canvas, box = segmentation.prepare(image)
        person, fashion = asyncio.run(probabilities(canvas))
        return (segmentation.labels_from_probs(image, person, box), segmentation.labels_from_probs(image, fashion, box))

    return parse


def real_batch(data: dict, indices) -> tuple[dict, np.ndarray, np.ndarray]:
    """A batch of real pairs, in the layout of batch()."""
    rows = [
        network_inputs(data["images"][i], data["parts"][i], data["keypoints"][i], data["target_keypoints"][i])
        for i in indices
    ]
    return (
        {k: np.stack([r[k] for r in rows]) for k in rows[0]},
        data["target_images"][list(indices)],
        data["target_parts"][list(indices)],
    )
