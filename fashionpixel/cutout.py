"""The cutout pipeline around the garment network, shared by the service and the evaluation command.

first pass: the photo letterboxed into the canvas → group probabilities → the chosen garment's
probability at photo size (cubic up). Focus pass (on by default): when the whole outfit fills at most
a quarter of the photo (a small person), the network again on a crop around it, at up to 4× the
resolution. Then the edges: a hard mask at
the validation-chosen threshold, softened by a guided filter or closed-form alpha matting in a band
around its boundary, so hair-thin gaps and soft edges become soft alpha.
"""

import cv2
import numpy as np

from fashionpixel import matting, quality
from fashionpixel.keypoints import SMALL_SHARE, locate_person
from fashionpixel.labels import GARMENT_CLASSES
from fashionpixel.letterbox import Box, Region, bounding_region, unletterbox
from fashionpixel.refine import work_size
from fashionpixel.segmentation import prepare  # the same 256×384 canvas as segmentation
from fashionpixel.stages import Cpu, Infer, Stage

GARMENTS = ("all", "top", "bottom", "dress", "shoes")
REFINEMENTS = ("none", "guided", "matting")
THRESHOLD = 0.5  # on a garment group's probability
# `all` = 1 − P(none): the network over-reaches at the garment's edge, and the validation sweep of the
# first pass (0.3 … 0.7: Dice 0.842 … 0.870, docs/models/cutout.md) chose 0.7.
THRESHOLDS = {"all": 0.7}
FOCUS_MARGIN = 0.1  # focus crop = garment box + this fraction of its longer side
# The focus pass is for an outfit that fills little of the photo (a small figure in a wide or padded shot):
# up to a quarter of it, whichever garment is asked for. Zooming on one garment (shoes) or on larger
# outfits made the matte worse (docs/models/cutout.md, "Shop framings").
FOCUS_MAX_FRACTION = 0.25
FOCUS_MAX_ZOOM = 4.0  # trained on people who fill the frame (shop framings): the crop is ≥ 1/4 of the photo a side
MATTING_MAX_PIXELS = 400_000  # matting works on at most this many pixels (its cost grows with the area)
MAX_WORK_PIXELS = 4_000_000  # larger photos are matted at this size and the alpha scaled up (cubic)
CROP_MARGIN = 0.02  # `crop`: the garment's box + this fraction of its longer side


def garment_probability(probs: np.ndarray, garment: str) -> np.ndarray:
    """5×H×W group probabilities → H×W probability of `garment` ("all" = not "none")."""
    if garment == "all":
        return 1.0 - probs[0].astype(np.float32, copy=False)
    return probs[GARMENT_CLASSES.index(garment)].astype(np.float32, copy=False)


def to_photo(prob: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """A canvas probability map → photo size; cubic when enlarging (sharper edges than linear)."""
    interp = cv2.INTER_CUBIC if box.w < width else cv2.INTER_AREA
    return np.clip(unletterbox(prob[None], box, width, height, interp)[0], 0.0, 1.0)


def focus_region(prob: np.ndarray, threshold: float = THRESHOLD) -> Region | None:
    """Where a second pass pays: around the garment, when it covers a small enough part of the photo."""
    region = bounding_region(prob >= threshold, FOCUS_MARGIN, pad=8)
    if region is None:
        return None
    h, w = prob.shape
    region = _at_least(region, round(w / FOCUS_MAX_ZOOM), round(h / FOCUS_MAX_ZOOM), w, h)
    area = (region.x1 - region.x0) * (region.y1 - region.y0)
    return region if area <= FOCUS_MAX_FRACTION * prob.size else None


def outfit_focus(outfit: np.ndarray) -> tuple[Region | None, bool]:
    """The focus pass's region around the whole outfit (focus_region), and whether the outfit is so
    small that the pose network should say where the person is (fashionpixel.keypoints.SMALL_SHARE)."""
    threshold = THRESHOLDS["all"]
    return focus_region(outfit, threshold), np.count_nonzero(outfit >= threshold) < SMALL_SHARE * outfit.size


def _at_least(r: Region, min_w: int, min_h: int, w: int, h: int) -> Region:
    """`r` grown about its centre to at least min_w × min_h, shifted to stay inside w × h."""

    def span(lo: int, hi: int, size: int, limit: int) -> tuple[int, int]:
        if hi - lo >= size:
            return lo, hi
        lo = min(max(0, (lo + hi - size) // 2), limit - size)
        return lo, lo + size

    x0, x1 = span(r.x0, r.x1, min_w, w)
    y0, y1 = span(r.y0, r.y1, min_h, h)
    return Region(x0, y0, x1, y1)


def merge_focus(prob: np.ndarray, focus_prob: np.ndarray, region: Region, alone: bool = False) -> np.ndarray:
    """The focus pass's answer replaces the first pass inside its region. `alone`: the outfit is a
    small person's, whom the region holds; what the first pass found outside it is the busy
    background it mistook for them (fashionpixel.segmentation.photo_probs does the same)."""
    out = np.zeros_like(prob) if alone else prob.copy()
    out[region.y0 : region.y1, region.x0 : region.x1] = focus_prob
    return out


def _band(mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.erode(mask, kernel).astype(bool), cv2.dilate(mask, kernel).astype(bool)


def edge_radius(width: int, height: int) -> int:
    """Width of the uncertain band around the boundary: ~1 % of the photo's shorter side, ≥ 2 px."""
    return max(2, round(min(width, height) / 100))


def refine_edges(image: np.ndarray, prob: np.ndarray, method: str, threshold: float = THRESHOLD) -> np.ndarray:
    """H×W float alpha in [0, 1]: the thresholded mask, its boundary band softened by `method`.

    Only the garment's box is worked on: far from the mask alpha is 0 whatever the method, and the
    filters read the photo no further than 2 × radius from the band (a guided filter's window of
    windows), which itself reaches radius beyond the mask. So the mask's box + 3 × radius gives the band
    the values that filtering the whole photo gives (tests/test_big_photos.py), at the cost of the box:
    on a 3000×4500 product photo (worked on at 1633×2449) the guided filter was ~60 % of post-processing."""
    mask = (prob >= threshold).astype(np.uint8)
    if method == "none" or not mask.any():
        return mask.astype(np.float32)
    h, w = mask.shape
    radius = edge_radius(w, h)
    x, y, bw, bh = cv2.boundingRect(mask)  # the box of the mask's pixels
    pad = 3 * radius + 1
    crop = (slice(max(0, y - pad), min(h, y + bh + pad)), slice(max(0, x - pad), min(w, x + bw + pad)))
    alpha = np.zeros((h, w), np.float32)
    alpha[crop] = _soft_band(image[crop], mask[crop], radius, method)
    return alpha


def _soft_band(image: np.ndarray, mask: np.ndarray, radius: int, method: str) -> np.ndarray:
    """refine_edges on a crop that holds the whole band with its context."""
    inside, reach = _band(mask, radius)
    if method == "matting" and (not inside.any() or reach.all()):
        # matting needs some sure garment and some sure background: a garment thinner than the band, or one
        # whose band reaches every edge of the photo, is refined by the guided filter instead
        method = "guided"
    if method == "guided":
        # The filter lets alpha follow the photo's own edges within `radius`; eps sets how strong an
        # edge must be to be followed (in squared 0..255 grey levels).
        soft = cv2.ximgproc.guidedFilter(image, mask.astype(np.float32), radius, (0.05 * 255) ** 2)
    elif method == "matting":
        soft = _matting(image, inside, reach)
    else:
        raise ValueError(f"unknown refinement {method!r}")
    return np.where(inside, 1.0, np.where(reach, np.clip(soft, 0.0, 1.0), 0.0)).astype(np.float32)


def _matting(image: np.ndarray, inside: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Closed-form alpha matting (pymatting) from the trimap inside/band/outside, on the garment's
    box only and at most MATTING_MAX_PIXELS, since its cost grows with the area it solves."""
    region = bounding_region(reach, 0.0, pad=4)
    crop = (slice(region.y0, region.y1), slice(region.x0, region.x1))
    trimap = np.where(inside[crop], 1.0, np.where(reach[crop], 0.5, 0.0))
    img = image[crop].astype(np.float64) / 255.0
    ch, cw = trimap.shape
    scale = min(1.0, (MATTING_MAX_PIXELS / (cw * ch)) ** 0.5)
    if scale < 1.0:
        size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    alpha = matting.estimate_alpha_cf(img, trimap)  # in a worker process: its numba code stays out of ours
    if scale < 1.0:
        alpha = cv2.resize(alpha, (cw, ch), interpolation=cv2.INTER_CUBIC)
    out = np.zeros(inside.shape, np.float32)
    out[crop] = alpha
    return out


def compose(
    image: np.ndarray,
    alpha: np.ndarray,
    output: str,
    background: tuple[int, int, int] | None,
    clear: bool = False,
) -> np.ndarray:
    """The response image: "mask" → grey alpha; "rgba" → photo + alpha, or flattened on `background`.
    `clear`: colour 0 under fully transparent pixels (alpha 0), as rembg does. Nothing shows there, and
    the runs of zeros make the PNG of a 3000×4500 cutout ~3× smaller and ~2× faster to encode
    (docs/benchmarks.md, "Big photos")."""
    # alpha is in [0, 1]: OpenCV's scaled conversion rounds like np.round(alpha * 255) without two
    # full-size float temporaries (13.5 megapixels: 54 MB each)
    a8 = cv2.convertScaleAbs(alpha, alpha=255)
    if output == "mask":
        return a8
    if background is not None:
        a = alpha[..., None]
        return np.round(image * a + np.array(background, np.float32) * (1 - a)).astype(np.uint8)
    if not clear:
        return cv2.merge([*cv2.split(image), a8])
    # Outside the matte's box everything is 0: a zeroed array (pages the kernel maps only when written)
    # and OpenCV's copyTo (0 where the mask is 0) + merge on the box alone, ~3× less work than the whole
    # photo and ~10× less than np.dstack with a boolean index.
    out = np.zeros((*a8.shape, 4), np.uint8)
    x, y, w, h = cv2.boundingRect(a8)
    if w > 0:  # else nothing shows at all
        box = (slice(y, y + h), slice(x, x + w))
        out[box] = cv2.merge([*cv2.split(cv2.copyTo(image[box], a8[box])), a8[box]])
    return out


async def matte(
    image: np.ndarray,
    garment: str,
    *,
    focus: bool,
    refine: str,
    infer: Infer,
    cpu: Cpu,
    stage: Stage,
    assess: quality.Assessment | None = None,
    pose: Infer | None = None,
) -> np.ndarray:
    """The whole cutout of one photo: H×W float alpha of `garment`, at the photo's size.
    infer(canvas H×W×3 uint8) → 5×H×W group probabilities. `assess`, when given, receives the
    matte's quality features (task "cutout", whichever the garment). `pose`, the pose network's
    heatmaps: where the focus pass looks when the first pass finds almost no outfit (a small person on
    a busy background, fashionpixel.keypoints.locate_person)."""
    h, w = image.shape[:2]
    ww, wh = work_size(w, h, MAX_WORK_PIXELS)
    with stage("preprocess"):
        work = image if (ww, wh) == (w, h) else await cpu(cv2.resize, image, (ww, wh), None, 0, 0, cv2.INTER_AREA)
        canvas, box = await cpu(prepare, work)
    with stage("infer"):
        probs = await infer(canvas)
    with stage("postprocess"):
        prob = await cpu(lambda: to_photo(garment_probability(probs, garment), box, ww, wh))
        threshold = THRESHOLDS.get(garment, THRESHOLD)
        region, small = None, False
        if focus:  # zoom in when the whole outfit is small (a small person), not when one garment is
            outfit = (
                prob
                if garment == "all"
                else await cpu(lambda: to_photo(garment_probability(probs, "all"), box, ww, wh))
            )
            region, small = await cpu(outfit_focus, outfit)
    if small and pose is not None:
        region = await locate_person(work, infer=pose, cpu=cpu, stage=stage) or region
    if region is not None:
        with stage("preprocess"):
            canvas, box = await cpu(prepare, work[region.y0 : region.y1, region.x0 : region.x1])
        with stage("infer"):
            probs = await infer(canvas)
        with stage("postprocess"):
            prob = await cpu(
                lambda: merge_focus(
                    prob,
                    to_photo(garment_probability(probs, garment), box, region.x1 - region.x0, region.y1 - region.y0),
                    region,
                    alone=small,
                )
            )
    with stage("postprocess"):
        alpha = await cpu(refine_edges, work, prob, refine, threshold)
    if assess is not None:
        with stage("quality"):
            assess.add("cutout", await cpu(quality.mask_features, prob, alpha))
    with stage("postprocess"):
        if (ww, wh) != (w, h):
            alpha = await cpu(upscale, alpha, w, h)
    return alpha


def upscale(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """Work-size alpha → the photo's size: cubic, clipped in place (no second full-size array).
    On the whole photo, not only around the edge: OpenCV's resize maps each output pixel from the whole
    image's scale, so a crop resized alone lands a fraction of a pixel off, and the whole 3000×4500
    upscale costs ~15-30 ms on two threads (docs/benchmarks.md, "Big photos")."""
    out = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0, 1, out=out)


def crop_region(alpha: np.ndarray) -> Region | None:
    return bounding_region(alpha > 0, CROP_MARGIN, pad=4)
