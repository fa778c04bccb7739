"""Fit any photo into the networks' fixed input size without distorting it, and undo that."""
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 127  # grey; training pads with the same value so the network knows it


@dataclass(frozen=True)
class Box:
    """Where the resized photo sits inside the network canvas."""
    x: int
    y: int
    w: int
    h: int


def letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Box]:
    """Resize an HxWx3 uint8 image to fit (width, height), keeping aspect ratio, padded with grey."""
    ih, iw = image.shape[:2]
    scale = min(width / iw, height / ih)
    w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
    # INTER_AREA is the right filter for shrinking (no aliasing); linear when enlarging.
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (w, h), interpolation=interp)
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    canvas[y:y + h, x:x + w] = resized
    return canvas, Box(x, y, w, h)


def unletterbox(maps: np.ndarray, box: Box, out_w: int, out_h: int) -> np.ndarray:
    """Crop CxHxW float maps (e.g. probabilities) back to the photo and resize to (out_w, out_h)."""
    crop = maps[:, box.y:box.y + box.h, box.x:box.x + box.w]
    hwc = np.ascontiguousarray(crop.transpose(1, 2, 0))
    resized = cv2.resize(hwc, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    return resized.transpose(2, 0, 1)
