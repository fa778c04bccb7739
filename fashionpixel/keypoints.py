"""The pose pipeline around the keypoint network, shared by the service and the evaluation command.

Focus pass (on by default, as in segmentation and cutout): when the keypoints the first pass found
span a small part of the photo (a small figure in a wide shot or on a padded canvas), the network looks
again at a crop around them, where the person fills its canvas as in training, and that crop's
keypoints are the answer.
"""

import numpy as np

from fashionpixel import quality
from fashionpixel.letterbox import Box, Region, focus_crop, letterbox
from fashionpixel.models import HEATMAP_STRIDE as STRIDE  # STRIDE: also the training's
from fashionpixel.models import POSE
from fashionpixel.pose import decode_heatmaps
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = POSE.canvas
SCORE_THRESHOLD = 0.25  # a heatmap peak below this is "not found" (chosen on validation data)
FOCUS_SEEN = 0.1  # the peaks that place the person for the focus pass: weaker ones count (a small person scores low)
# the keypoints' box grown by these shares of its height (x, y): keypoints stop at the eyes and ankles
FOCUS_MARGIN = (0.3, 0.25)
FOCUS_MAX_AREA = 0.35  # look again only when that crop is at most this share of the photo


def prepare(image: np.ndarray) -> tuple[np.ndarray, Box]:
    return letterbox(image, CANVAS_W, CANVAS_H)


def keypoints_from_heatmaps(
    heatmaps: np.ndarray, box: Box, width: int, height: int, threshold: float = SCORE_THRESHOLD
) -> np.ndarray:
    """18×h×w heatmaps on the canvas → 18×3 (x, y, score) in photo pixels; not found = (-1, -1, 0)."""
    k = decode_heatmaps(heatmaps.astype(np.float32), STRIDE)
    scale = box.w / width
    k[:, 0] = np.clip((k[:, 0] - box.x) / scale, 0, width - 1)
    k[:, 1] = np.clip((k[:, 1] - box.y) / scale, 0, height - 1)
    k[:, 2] = np.clip(k[:, 2], 0, 1)
    k[k[:, 2] < threshold] = (-1, -1, 0)
    return k


def focus_region(keypoints: np.ndarray, width: int, height: int) -> Region | None:
    """The crop worth a second look: around the keypoints found (score ≥ FOCUS_SEEN), at the canvas's
    aspect; None when fewer than three were found or the person is already large in the photo."""
    seen = keypoints[keypoints[:, 2] >= FOCUS_SEEN, :2]
    if len(seen) < 3:
        return None
    (x0, y0), (x1, y1) = seen.min(0), seen.max(0)
    tall = max(y1 - y0, (x1 - x0) / 2, 1.0)
    x0, x1 = x0 - FOCUS_MARGIN[0] * tall, x1 + FOCUS_MARGIN[0] * tall
    y0, y1 = y0 - FOCUS_MARGIN[1] * tall, y1 + FOCUS_MARGIN[1] * tall
    return focus_crop(x0, y0, x1, y1, CANVAS_W / CANVAS_H, width, height, FOCUS_MAX_AREA)


async def estimate(
    image: np.ndarray,
    *,
    infer: Infer,
    cpu: Cpu,
    stage: Stage,
    assess: quality.Assessment | None = None,
    focus: bool = True,
    threshold: float = SCORE_THRESHOLD,
) -> np.ndarray:
    """The pose of one photo → 18×3 (x, y, score) in photo pixels, peaks below `threshold` "not found".
    infer(canvas) → 18×h×w heatmaps. `focus`: the second pass on a small person (see the module doc).
    `assess`, when given, receives the keypoints' quality features (task "pose")."""
    h, w = image.shape[:2]
    with stage("preprocess"):
        canvas, box = await cpu(prepare, image)
    with stage("infer"):
        heatmaps = await infer(canvas)
    with stage("postprocess"):
        keypoints = await cpu(keypoints_from_heatmaps, heatmaps, box, w, h, 0.0)
    region = focus_region(keypoints, w, h) if focus else None
    if region is not None:
        crop = image[region.y0 : region.y1, region.x0 : region.x1]
        with stage("preprocess"):
            canvas, box = await cpu(prepare, crop)
        with stage("infer"):
            heatmaps = await infer(canvas)
        with stage("postprocess"):
            keypoints = await cpu(keypoints_from_heatmaps, heatmaps, box, crop.shape[1], crop.shape[0], 0.0)
            keypoints[:, :2] += (region.x0, region.y0)
    keypoints[keypoints[:, 2] < threshold] = (-1, -1, 0)
    if assess is not None:
        assess.add("pose", quality.pose_features(keypoints))
    return keypoints
