"""Post-processing of segmentation probabilities: dense CRF, small-region removal, superpixel vote.

Each step takes and returns plain arrays so the evaluation command measures exactly what the
service runs.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax
from skimage.segmentation import felzenszwalb

# Superpixels' cost grows with pixels; above this they are found on a shrunk copy (see `_shrunk`).
# The CRF has its own, smaller size: CrfParams.max_pixels.
SUPERPIXEL_MAX_PIXELS = 160_000


@dataclass(frozen=True)
class CrfParams:
    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 40.0
    bilateral_srgb: float = 12.0
    bilateral_compat: float = 4.0
    # the CRF runs on a copy shrunk to this many pixels: 80k measured as accurate as 160k at half the
    # cost (docs/models/segmentation.md, "Post-processing")
    max_pixels: int = 80_000
    # the CRF runs only on the box around the pixels whose top class the network gives less than `sure`
    # (plus `margin` work pixels); elsewhere the network's marginals stand. As accurate as the whole photo
    # in every framing, 0.55-0.85 of its time (docs/models/segmentation.md, "The CRF's cost"); None = all
    sure: float | None = 0.9
    margin: int = 16


def _shrunk(image: np.ndarray, max_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = image.shape[:2]
    sw, sh = work_size(w, h, max_pixels)
    if (sw, sh) == (w, h):
        return image, (w, h)
    return cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA), (w, h)


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams = CrfParams()) -> np.ndarray:
    """Krähenbühl & Koltun's fully connected CRF over CxHxW probabilities → CxHxW refined marginals.

    Large inputs run on a shrunk copy; the marginals are resized back (smooth, unlike labels)."""
    small, (w0, h0) = _shrunk(image, params.max_pixels)
    if small is not image:
        sh, sw = small.shape[:2]
        probs = np.stack([cv2.resize(p, (sw, sh), interpolation=cv2.INTER_AREA) for p in probs])
        image = small
    q = probs.astype(np.float32, copy=True)
    box = _unsure_box(probs, params)
    if box is not None:
        q[:, box[0], box[1]] = _mean_field(image[box], probs[:, box[0], box[1]], params)
    if q.shape[1:] != (h0, w0):
        q = np.stack([cv2.resize(p, (w0, h0), interpolation=cv2.INTER_LINEAR) for p in q])
    return q


def _unsure_box(probs: np.ndarray, params: CrfParams) -> tuple[slice, slice] | None:
    """The part of the work copy the CRF refines: the box of the pixels whose top class is below
    `params.sure`, grown by `params.margin` (the whole copy when `sure` is None; None when all are sure)."""
    if params.sure is None:
        return slice(None), slice(None)
    unsure = probs.max(0) < params.sure
    if not unsure.any():
        return None
    x, y, bw, bh = cv2.boundingRect(unsure.astype(np.uint8))
    (h, w), m = probs.shape[1:], params.margin
    return slice(max(0, y - m), min(h, y + bh + m)), slice(max(0, x - m), min(w, x + bw + m))


def _mean_field(image: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    n, h, w = probs.shape
    crf = dcrf.DenseCRF2D(w, h, n)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.clip(probs, 1e-6, 1.0).astype(np.float32))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy,
        srgb=params.bilateral_srgb,
        rgbim=np.require(image, np.uint8, ["C", "W"]),
        compat=params.bilateral_compat,
    )
    return np.asarray(crf.inference(params.iterations), dtype=np.float32).reshape(n, h, w)


def remove_small_regions(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Connected regions (any class) smaller than `min_size` pixels take the most common label
    around them."""
    if min_size <= 0:
        return labels
    out = labels.copy()
    kernel = np.ones((3, 3), np.uint8)
    for cls in np.unique(labels):
        mask = (out == cls).astype(np.uint8)
        count, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for i in np.nonzero(stats[1:, cv2.CC_STAT_AREA] < min_size)[0] + 1:
            x, y, w, h = stats[i, :4]
            x0, y0 = max(x - 1, 0), max(y - 1, 0)
            x1, y1 = min(x + w + 1, labels.shape[1]), min(y + h + 1, labels.shape[0])
            region = comp[y0:y1, x0:x1] == i
            ring = cv2.dilate(region.astype(np.uint8), kernel).astype(bool) & ~region
            around = out[y0:y1, x0:x1][ring]
            if around.size:
                out[y0:y1, x0:x1][region] = np.bincount(around).argmax()
    return out


def superpixel_vote(
    image: np.ndarray,
    labels: np.ndarray,
    scale: float = 100,
    sigma: float = 0.5,
    min_size: int = 30,
    max_pixels: int = SUPERPIXEL_MAX_PIXELS,
) -> np.ndarray:
    """Felzenszwalb superpixels; each takes the majority label of its pixels (snaps edges to colour edges).
    On large inputs the superpixels are found on a shrunk copy and scaled back (nearest)."""
    small, (w, h) = _shrunk(image, max_pixels)
    segments = felzenszwalb(small, scale=scale, sigma=sigma, min_size=min_size)
    if small is not image:
        segments = cv2.resize(segments.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    segments = segments.ravel()
    n = int(labels.max()) + 1
    votes = np.bincount(segments * n + labels.ravel(), minlength=(segments.max() + 1) * n)
    majority = votes.reshape(-1, n).argmax(1).astype(np.uint8)
    return majority[segments].reshape(labels.shape)


def work_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The size at which post-processing runs: the photo's, shrunk to at most `max_pixels`."""
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine(
    image: np.ndarray, probs: np.ndarray, crf: bool | CrfParams, min_region: int, superpixels: bool
) -> np.ndarray:
    """image HxWx3 and probs CxHxW at the same size → HxW uint8 labels. `crf`: True = CrfParams()."""
    if crf:
        probs = dense_crf(image, probs, crf if isinstance(crf, CrfParams) else CrfParams())
    labels = probs.argmax(0).astype(np.uint8)
    if superpixels:
        labels = superpixel_vote(image, labels)
    return remove_small_regions(labels, min_region)
