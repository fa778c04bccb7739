"""The pose pipeline around the keypoint network, shared by the service and the evaluation command."""

import numpy as np

from fashionpixel import quality
from fashionpixel.letterbox import Box, letterbox
from fashionpixel.models import HEATMAP_STRIDE as STRIDE  # STRIDE: also the training's
from fashionpixel.models import POSE
from fashionpixel.pose import decode_heatmaps
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = POSE.canvas
SCORE_THRESHOLD = 0.25  # a heatmap peak below this is "not found" (chosen on validation data)


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


async def estimate(
    image: np.ndarray, *, infer: Infer, cpu: Cpu, stage: Stage, assess: quality.Assessment | None = None
) -> np.ndarray:
    """The pose of one photo → 18×3 (x, y, score) in photo pixels. infer(canvas) → 18×h×w heatmaps.
    `assess`, when given, receives the keypoints' quality features (task "pose")."""
    h, w = image.shape[:2]
    with stage("preprocess"):
        canvas, box = await cpu(prepare, image)
    with stage("infer"):
        heatmaps = await infer(canvas)
    with stage("postprocess"):
        keypoints = await cpu(keypoints_from_heatmaps, heatmaps, box, w, h)
    if assess is not None:
        assess.add("pose", quality.pose_features(keypoints))
    return keypoints
