"""Post-processing of segmentation probabilities: dense CRF, small-region removal, superpixel vote.

Each step takes and returns plain arrays so the evaluation command measures exactly what the
service runs.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

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


# The person mask's CRF: a third of the smoothness kernel's weight. At the parsing's 3 it rounds off a
# 2-class mask's thin parts (a small person's limbs are a few pixels wide at the CRF's size): person mean IoU
# -0.0003 to +0.0092 across the seven framings at 1 (docs/models/segmentation.md, "The CRF reads the
# network at its own size"). The 7-class parsing keeps 3.
PERSON_CRF = CrfParams(gaussian_compat=1.0)


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
    if params.gaussian_compat:  # 0: the appearance kernel alone, without the smoothness kernel's lattice
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
    # imported here: scikit-image brings SciPy, ~10 MB in every service process, and superpixels are off
    # by default
    from skimage.segmentation import felzenszwalb

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
    """The size at which post-processing runs: the photo's, shrunk to at most `max_pixels`. Rounded,
    but never over the budget: a size a pixel over it (a 600×600 square at 80k: 283×283) made the CRF
    shrink its input once more and enlarge the marginals back, a wasted resample and a slight blur."""
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    if w * h > max_pixels:
        w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return w, h


def class_map(probs: np.ndarray) -> np.ndarray:
    """C×H×W scores → H×W uint8 index of the highest, the first of equal ones: probs.argmax(0), which
    numpy computes slowly along the first axis (4.8-8 ms for 7×400×600); a running maximum in OpenCV
    takes 0.7 ms."""
    best = probs[0].copy()
    labels = np.zeros(best.shape, np.uint8)
    for c in range(1, len(probs)):
        higher = cv2.compare(probs[c], best, cv2.CMP_GT)  # 255 where class c beats every earlier one
        labels = cv2.max(cv2.bitwise_and(higher, c), cv2.bitwise_and(labels, cv2.bitwise_not(higher)))
        cv2.max(best, probs[c], dst=best)
    return labels


def refine(image: np.ndarray, probs: np.ndarray, min_region: int, superpixels: bool) -> np.ndarray:
    """image HxWx3 and probs CxHxW (the CRF's marginals when it ran: `dense_crf`) at the same size → HxW
    uint8 labels, superpixels and small regions as asked."""
    labels = class_map(probs)
    if superpixels:
        labels = superpixel_vote(image, labels)
    return remove_small_regions(labels, min_region)


@dataclass(frozen=True)
class BackdropParams:
    band: int = 4  # work pixels either side of the outline that may change
    ring: tuple[int, int] = (3, 9)  # where the backdrop's colour is read: this far outside the outline
    plain: float = 8.0  # plain = the ring's median RGB distance to its median colour at most this
    share: float = 0.8  # ... and this share of the ring within 2.5 × plain of it
    contrast: float = 30.0  # a pixel whose inside colour is closer than this to the backdrop's keeps its label


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _ring_colours(image: np.ndarray, fg: np.ndarray, ring: tuple[int, int]) -> np.ndarray:
    """N×3 float32 colours of the pixels `ring` = (near, far) pixels outside the mask `fg`. The ring is
    found on the mask's box grown by `far` (the same pixels as on the whole photo, a fraction of the
    work on a person who does not fill the photo)."""
    x, y, w, h = cv2.boundingRect(fg)
    if w == 0:
        return np.empty((0, 3), np.float32)
    m = ring[1] + 1
    box = slice(max(0, y - m), y + h + m), slice(max(0, x - m), x + w + m)
    mask = fg[box]
    outside = (cv2.dilate(mask, _disc(ring[1])) > 0) & ~(cv2.dilate(mask, _disc(ring[0])) > 0)
    return image[box][outside].astype(np.float32)


def snap_to_backdrop(image: np.ndarray, labels: np.ndarray, params: BackdropParams = BackdropParams()) -> np.ndarray:
    """A person on a plain backdrop (a studio wall, a shop's white or grey): each pixel of a band around
    the outline is foreground when its colour lies at least half-way from the backdrop's colour to the
    colour just inside the outline, a one-line alpha estimate along the line between the two. The
    network's outline, drawn at a third of the photo's resolution, is out by a pixel or two all round; the
    backdrop says where it is. Anywhere else (a street, a room, a padded street photo whose person stands
    on the street) the ring around the person is not plain and the labels are returned unchanged.
    labels: HxW class indices, 0 = background; pixels that turn foreground take their nearest class."""
    fg = (labels > 0).astype(np.uint8)
    ring = _ring_colours(image, fg, params.ring)
    if len(ring) < 50:
        return labels
    colour = np.median(ring, 0)
    spread = np.linalg.norm(ring - colour, axis=1)
    if np.median(spread) > params.plain or np.mean(spread < 2.5 * params.plain) < params.share:
        return labels
    img = image.astype(np.float32)
    inner = (cv2.erode(fg, _disc(params.band)) > 0).astype(np.float32)
    window = (4 * params.band + 1,) * 2
    weight = cv2.blur(inner, window)
    inside = cv2.blur(img * inner[..., None], window) / np.maximum(weight, 1e-6)[..., None]
    span = inside - colour
    length = np.linalg.norm(span, axis=2)
    alpha = ((img - colour) * span).sum(2) / np.maximum(length, 1e-6) ** 2
    band = (cv2.dilate(fg, _disc(params.band)) > 0) & (inner == 0) & (weight > 0.05) & (length >= params.contrast)
    on = band & (alpha >= 0.5)
    out = labels.copy()
    out[band & ~on] = 0
    grow = on & (labels == 0)
    if grow.any():  # the nearest foreground pixel's class
        _, nearest = cv2.distanceTransformWithLabels(1 - fg, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
        classes = np.zeros(nearest.max() + 1, labels.dtype)
        classes[nearest[fg > 0]] = labels[fg > 0]
        out[grow] = classes[nearest[grow]]
    return out
