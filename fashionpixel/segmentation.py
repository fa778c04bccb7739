"""The segmentation pipeline around the network, shared by the service and the evaluation command:
letterbox the photo into the canvas, and turn canvas probabilities into full-size labels.

Focus pass: a person who fills little of the photo (a wide lifestyle shot, a small figure on a
padded canvas) covers a few dozen canvas pixels. When the first pass finds the foreground in a small
part of the photo, the network looks again at a crop around it, at the canvas's aspect, and its
probabilities replace the first pass's inside the crop (docs/models/segmentation.md, shop framings)."""

import cv2
import numpy as np

from fashionpixel import quality
from fashionpixel.letterbox import Box, Region, bounding_region, focus_crop, letterbox, unletterbox
from fashionpixel.models import SEGMENTATION
from fashionpixel.refine import CrfParams, refine, work_size
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = SEGMENTATION.canvas
# Post-processing runs at most at this size; labels are then resized (nearest) to the photo's size.
MAX_WORK_PIXELS = 1_000_000
FOCUS_MARGIN = 0.1  # the focus crop: the foreground's box grown by this share of its longer side
FOCUS_MAX_AREA = 0.35  # focus only when that crop is at most this share of the photo (≥ 1.7× zoom a side)


def prepare(image: np.ndarray) -> tuple[np.ndarray, Box]:
    return letterbox(image, CANVAS_W, CANVAS_H)


def focus_input(image: np.ndarray, region: Region) -> tuple[np.ndarray, Box]:
    """The focus pass's network input: `region` of the photo on the canvas, and where it sits there."""
    return prepare(image[region.y0 : region.y1, region.x0 : region.x1])


def focus_region(probs: np.ndarray, box: Box, width: int, height: int) -> Region | None:
    """The photo's crop worth a second look: around the first pass's foreground (any class but 0,
    background), at the canvas's aspect; None when the foreground is absent or already large."""
    foreground = probs[0, box.y : box.y + box.h, box.x : box.x + box.w].astype(np.float32) <= 0.5
    found = bounding_region(foreground, FOCUS_MARGIN, pad=2)
    if found is None:
        return None
    scale = width / box.w  # canvas → photo pixels
    x0, y0, x1, y1 = (v * scale for v in (found.x0, found.y0, found.x1, found.y1))
    return focus_crop(x0, y0, x1, y1, CANVAS_W / CANVAS_H, width, height, FOCUS_MAX_AREA)


def photo_probs(
    probs: np.ndarray,
    box: Box,
    size: tuple[int, int],
    photo_size: tuple[int, int],
    focus: tuple[Region, np.ndarray, Box] | None = None,
) -> np.ndarray:
    """Canvas probabilities → C×H×W over the photo at size=(W, H) (the working size, or the quality
    features' smaller one), the focus pass's (see labels_from_probs) pasted into its region."""
    (ww, wh), (w, h) = size, photo_size
    out = unletterbox(probs.astype(np.float32), box, ww, wh)
    if focus is not None:
        region, crop_probs, crop_box = focus
        sx, sy = ww / w, wh / h
        x0, y0, x1, y1 = round(region.x0 * sx), round(region.y0 * sy), round(region.x1 * sx), round(region.y1 * sy)
        if x1 > x0 and y1 > y0:
            out[:, y0:y1, x0:x1] = unletterbox(crop_probs.astype(np.float32), crop_box, x1 - x0, y1 - y0)
    return out


def labels_from_probs(
    image: np.ndarray,
    probs: np.ndarray,
    box: Box,
    *,
    crf: bool | CrfParams = False,
    min_region: int = 0,
    superpixels: bool = False,
    focus: tuple[Region, np.ndarray, Box] | None = None,
) -> np.ndarray:
    """image HxWx3 uint8, probs CxHcxWc on the canvas → HxW uint8 class indices. `focus` = (region of
    the photo, the crop's canvas probabilities, the crop's box): they replace the first pass there."""
    h, w = image.shape[:2]
    ww, wh = work_size(w, h, MAX_WORK_PIXELS)
    work_probs = photo_probs(probs, box, (ww, wh), (w, h), focus)
    work_image = image if (ww, wh) == (w, h) else cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA)
    # min_region is given in photo pixels; scale it to the working size.
    labels = refine(work_image, work_probs, crf, round(min_region * ww * wh / (w * h)), superpixels)
    if (ww, wh) != (w, h):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return labels


def quality_features(
    probs: np.ndarray, box: Box, labels: np.ndarray, focus: tuple[Region, np.ndarray, Box] | None = None
) -> tuple[str, dict[str, float]]:
    """(task, features) of a result for fashionpixel/quality.py: its labels against the probabilities
    they came from (both at a small size). The task follows from the classes: person (2) or fashion."""
    h, w = labels.shape
    size = work_size(w, h, quality.PIXELS)
    small = photo_probs(probs, box, size, (w, h), focus)
    labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    if len(small) == 2:
        return "person", quality.mask_features(small[1], labels == 1)
    return "fashion", quality.parsing_features(small, labels)


async def segment(
    image: np.ndarray,
    *,
    crf: bool | CrfParams,
    min_region: int,
    superpixels: bool,
    infer: Infer,
    cpu: Cpu,
    stage: Stage,
    focus: bool = True,
    assess: quality.Assessment | None = None,
) -> np.ndarray:
    """The whole segmentation of one photo → H×W uint8 labels. infer(canvas) → one task's C×h×w
    probabilities on the canvas. `focus`: a second pass on a small foreground (see the module doc).
    `assess`, when given, receives the result's quality features."""
    with stage("preprocess"):
        canvas, box = await cpu(prepare, image)
    with stage("infer"):
        probs = await infer(canvas)
    second = None
    region = focus_region(probs, box, image.shape[1], image.shape[0]) if focus else None
    if region is not None:
        with stage("preprocess"):
            crop, crop_box = await cpu(focus_input, image, region)
        with stage("infer"):
            second = (region, await infer(crop), crop_box)
    with stage("postprocess"):
        labels = await cpu(
            lambda: labels_from_probs(
                image, probs, box, crf=crf, min_region=min_region, superpixels=superpixels, focus=second
            )
        )
    if assess is not None:
        with stage("quality"):
            assess.add(*await cpu(quality_features, probs, box, labels, second))
    return labels
