"""The segmentation pipeline around the network, shared by the service and the evaluation command:
letterbox the photo into the canvas, and turn canvas probabilities into full-size labels."""
import cv2
import numpy as np

from fashionpixel.letterbox import Box, letterbox, unletterbox
from fashionpixel.models import SEGMENTATION
from fashionpixel.refine import CrfParams, refine, work_size
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = SEGMENTATION.canvas
# Post-processing runs at most at this size; labels are then resized (nearest) to the photo's size.
MAX_WORK_PIXELS = 1_000_000


def prepare(image: np.ndarray) -> tuple[np.ndarray, Box]:
    return letterbox(image, CANVAS_W, CANVAS_H)


def labels_from_probs(image: np.ndarray, probs: np.ndarray, box: Box, *, crf: bool | CrfParams = False,
                      min_region: int = 0, superpixels: bool = False) -> np.ndarray:
    """image HxWx3 uint8, probs CxHcxWc on the canvas → HxW uint8 class indices."""
    h, w = image.shape[:2]
    ww, wh = work_size(w, h, MAX_WORK_PIXELS)
    work_probs = unletterbox(probs.astype(np.float32), box, ww, wh)
    work_image = image if (ww, wh) == (w, h) else cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA)
    # min_region is given in photo pixels; scale it to the working size.
    labels = refine(work_image, work_probs, crf, round(min_region * ww * wh / (w * h)), superpixels)
    if (ww, wh) != (w, h):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return labels


async def segment(image: np.ndarray, *, crf: bool | CrfParams, min_region: int, superpixels: bool,
                  infer: Infer, cpu: Cpu, stage: Stage) -> np.ndarray:
    """The whole segmentation of one photo → H×W uint8 labels. infer(canvas) → one task's C×h×w
    probabilities on the canvas."""
    with stage("preprocess"):
        canvas, box = await cpu(prepare, image)
    with stage("infer"):
        probs = await infer(canvas)
    with stage("postprocess"):
        return await cpu(lambda: labels_from_probs(image, probs, box, crf=crf, min_region=min_region,
                                                   superpixels=superpixels))
