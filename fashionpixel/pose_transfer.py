"""Pose-transfer inputs, shared by the training data, the service and the evaluation.

The generator (training/models/pose_transfer.py) renders the source person in a target pose on a
CANVAS_W×CANVAS_H canvas. It is given:
- the source person on white and its parts (the 7 parsing classes plus "other clothing": person
  pixels the parsing calls background, such as jackets), from which it takes one style code per part;
- the target pose as 18 Gaussian heatmaps;
- a coarse guess of the result: the source warped part by part onto the target skeleton (one affine
  map per body part, as in Deformable GANs). The warp carries texture to where it belongs; the
  network fixes what a rigid warp gets wrong (occlusion, cloth, holes).
"""

import asyncio
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from fashionpixel import keypoints as keypoint_net
from fashionpixel import quality
from fashionpixel.letterbox import Box, fit_box, letterbox, letterbox_labels, points_to_canvas
from fashionpixel.models import POSE, POSE_CROPS, POSE_TRANSFER
from fashionpixel.networks import Network, infer_with
from fashionpixel.pose import FLIP_INDEX, found, without_stray_face_points
from fashionpixel.reading import read_person
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = POSE_TRANSFER.canvas
WHITE = 255
PART_NAMES = ("background", "skin", "hair", "t-shirt", "shoes", "pants", "dress", "other clothing")
PARTS = len(PART_NAMES)
HEATMAP_SIGMA = 3.0  # canvas pixels
OTHER = PART_NAMES.index("other clothing")

# Body parts for the warp: each is rendered with one affine map. Bones are the keypoint segments a
# source pixel is assigned by (nearest bone); the first bone of a limb also defines its map.
TORSO_POINTS = (1, 2, 5, 8, 11)
HEAD_POINTS = (0, 1, 14, 15, 16, 17)
BODY_PARTS = {  # painter's order: later parts cover earlier ones
    "torso": ((2, 5), (8, 11), (2, 8), (5, 11), (1, 8), (1, 11)),
    "right_thigh": ((8, 9),),
    "left_thigh": ((11, 12),),
    "right_shin": ((9, 10),),
    "left_shin": ((12, 13),),
    "right_upper_arm": ((2, 3),),
    "left_upper_arm": ((5, 6),),
    "right_forearm": ((3, 4),),
    "left_forearm": ((6, 7),),
    "head": ((1, 0), (0, 14), (0, 15), (14, 16), (15, 17)),
}
LIMB_REACH = 1.35  # a limb's map also covers this far past its end joint (hands, feet)
# Garment-aware ownership (issue 25): a dress or skirt below the hips is nearest to the thigh and shin
# bones, which tear it in two and move each half with a leg. With `skirt`, the source pixels of
# `skirt_parts` that a leg bone owns move as one piece instead ("skirt"), painted over the legs: by the
# torso's map ("torso"), by the affine map of the hips and knees ("legs"), or by the one that carries both
# hips and the knees' midpoint ("hips": the skirt turns and stretches with the legs' mean direction, not
# wider when they spread); the torso's where the legs give none. Pants and skin keep following the legs.
SKIRT_MAPS = ("", "torso", "legs", "hips")
LEG_PARTS = ("right_thigh", "left_thigh", "right_shin", "left_shin")
SKIRT_REACH = {"ankles": LEG_PARTS, "knees": LEG_PARTS[:2]}  # the leg bones whose garment pixels join the skirt
SKIRT_POINTS = (8, 11, 9, 12)  # hips and knees
PAINT_ORDER = (*tuple(BODY_PARTS)[:5], "skirt", *tuple(BODY_PARTS)[5:])  # the skirt over the legs, under the arms


def parts_map(person: np.ndarray, fashion: np.ndarray) -> np.ndarray:
    """uint8 H×W part index: the fashion class, and OTHER where the person has no garment class."""
    parts = np.where(person > 0, fashion, 0).astype(np.uint8)
    parts[(person > 0) & (fashion == 0)] = OTHER
    return parts


def mirror(image: np.ndarray, parts: np.ndarray, keypoints: np.ndarray):
    """The horizontally mirrored canvas: right and left keypoints swap names."""
    k = np.asarray(keypoints, np.float32)[FLIP_INDEX].copy()
    ok = found(k)
    k[ok, 0] = image.shape[1] - 1 - k[ok, 0]
    return image[:, ::-1].copy(), parts[:, ::-1].copy(), k


def heatmaps(keypoints: np.ndarray, width: int = CANVAS_W, height: int = CANVAS_H) -> np.ndarray:
    """H×W×18 uint8 Gaussian heatmaps (255 at a keypoint; all 0 for a missing one)."""
    ok = found(keypoints)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((height, width, 18), np.uint8)
    for i in np.nonzero(ok)[0]:
        x, y = keypoints[i, :2]
        out[..., i] = np.round(255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * HEATMAP_SIGMA**2)))
    return out


def _affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares 2×3 affine map of ≥3 points, or None when they are (nearly) collinear."""
    if len(src) < 3 or np.linalg.svd(src - src.mean(0), compute_uv=False)[1] < 4.0:  # spread < ~4 px
        return None
    a = np.hstack([src, np.ones((len(src), 1), np.float32)])
    m, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return m.T.astype(np.float32)


def _bone_map(a, b, a2, b2, mirrored: bool, width_scale: float) -> np.ndarray | None:
    """The 2×3 map taking bone a→b onto a2→b2: stretched along the bone, `width_scale` across it,
    and flipped across it when the target is the mirror image of the source."""
    d, d2 = b - a, b2 - a2
    length, length2 = float(np.hypot(*d)), float(np.hypot(*d2))
    if length < 2 or length2 < 2:
        return None
    u, u2 = d / length, d2 / length2
    n, n2 = np.array([-u[1], u[0]]), np.array([-u2[1], u2[0]]) * (-1 if mirrored else 1)
    # p' = a2 + ((p-a)·u) (length2/length) u2 + ((p-a)·n) width_scale n2
    lin = np.outer(u2, u) * (length2 / length) + np.outer(n2, n) * width_scale
    return np.hstack([lin, (a2 - lin @ a)[:, None]]).astype(np.float32)


def _head_map(src: np.ndarray, dst: np.ndarray, both: np.ndarray) -> np.ndarray | None:
    """An affine map fitted to the face points and the neck: it mirrors the head when the face turns
    the other way (a head bone alone would rotate it); None when it is not a plausible head move."""
    idx = [i for i in HEAD_POINTS if both[i]]
    m = _affine(src[idx], dst[idx]) if len(idx) >= 4 else None
    if m is None:
        return None
    return m if _plausible(m, 0.6, 1.6) else None


def _plausible(m: np.ndarray, low: float = 0.25, high: float = 4.0) -> bool:
    """A part may shrink or grow 4× at most: beyond that (or degenerate) the keypoints are wrong,
    and the generator does better from the style codes than from a smeared warp."""
    s = np.linalg.svd(m[:, :2], compute_uv=False)
    return bool(np.isfinite(m).all() and low < s[1] and s[0] < high)


def _segment_distance2(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances of the points (xs, ys) to the segment a-b (squared: they are only compared;
    column arithmetic: the high-resolution warp has ~10⁵ person pixels)."""
    dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
    px, py = xs - a[0], ys - a[1]
    t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey


def _skirt_map(src: np.ndarray, dst: np.ndarray, both: np.ndarray, how: str, torso: np.ndarray | None):
    """The map a skirt moves by: the torso's; ("legs") the affine fit of the hips and knees seen on both
    sides; ("hips") the affine map of both hips and the knees' midpoint; the torso's when these are not
    plausible; None when that is not either."""
    m = None
    if how == "legs":
        idx = [i for i in SKIRT_POINTS if both[i]]
        m = _affine(src[idx], dst[idx]) if len(idx) >= 3 else None
    elif how == "hips" and both[list(SKIRT_POINTS)].all():
        mid = [8, 11]
        m = _affine(
            np.vstack([src[mid], src[[9, 12]].mean(0, keepdims=True)]),
            np.vstack([dst[mid], dst[[9, 12]].mean(0, keepdims=True)]),
        )
    return next((c for c in (m, torso) if c is not None and _plausible(c)), None)


def warp_to_pose(
    image: np.ndarray,
    parts: np.ndarray,
    source_kp: np.ndarray,
    target_kp: np.ndarray,
    labels: bool = False,
    skirt: str = "",
    skirt_parts: tuple[str, ...] = ("dress",),
    skirt_to: str = "ankles",
):
    """The source person carried part by part onto the target skeleton (canvas in, canvas out).

    Returns (H×W×3 uint8 on white, H×W uint8 0/255 coverage), and with `labels` also the source's parts
    map carried by the same maps (nearest neighbour; 0 where the warp has no pixel). A part whose
    keypoints are missing in the source or the target is left out: the generator paints it from the
    style codes alone. `skirt` (one of SKIRT_MAPS; "" = off): the pixels of `skirt_parts` that a leg
    bone owns move as one piece by that map (SKIRT_MAPS above); `skirt_to` "knees": only those the thighs own
    (a long dress's lower part keeps following the shins)."""
    h, w = parts.shape
    src, dst = np.asarray(source_kp, np.float32)[:, :2], np.asarray(target_kp, np.float32)[:, :2]
    both = found(source_kp) & found(target_kp)
    person = np.argwhere(parts > 0)[:, ::-1].astype(np.float32)  # (x, y)
    warped = np.full_like(image, WHITE)
    cover = np.zeros((h, w), np.uint8)
    carried = np.zeros((h, w), np.uint8)

    def done():
        return (warped, cover, carried) if labels else (warped, cover)

    if len(person) == 0:
        return done()

    torso_idx = [i for i in TORSO_POINTS if both[i]]
    torso = _affine(src[torso_idx], dst[torso_idx])
    if torso is not None:
        mirrored, width_scale = np.linalg.det(torso[:, :2]) < 0, float(np.sqrt(abs(np.linalg.det(torso[:, :2]))))
    else:  # shoulders swap sides when the target is mirrored
        mirrored = bool(both[2] and both[5] and (src[2, 0] - src[5, 0]) * (dst[2, 0] - dst[5, 0]) < 0)
        width_scale = 1.0
    width_scale = float(np.clip(width_scale, 0.5, 2.0))

    # every source person pixel belongs to its nearest bone (among bones seen in the source)
    names, dist, seen = [], [], found(source_kp)
    xs, ys = person[:, 0], person[:, 1]
    for name, bones in BODY_PARTS.items():
        reach = 1.0 if name in ("torso", "head") else LIMB_REACH
        ds = [
            _segment_distance2(xs, ys, src[a], src[a] + reach * (src[b] - src[a]))
            for a, b in bones
            if seen[a] and seen[b]
        ]
        if ds:
            names.append(name)
            dist.append(np.min(ds, axis=0))
    if not names:
        return done()
    owner = np.argmin(np.stack(dist), axis=0)  # index into names
    skirt_map = _skirt_map(src, dst, both, skirt, torso) if skirt else None
    if skirt_map is not None:  # the garment's pixels a leg owns become one part
        legs = [names.index(n) for n in SKIRT_REACH[skirt_to] if n in names]
        label = parts[person[:, 1].astype(int), person[:, 0].astype(int)]
        garment = np.isin(owner, legs) & np.isin(label, [PART_NAMES.index(p) for p in skirt_parts])
        owner[garment] = len(names)
        names.append("skirt")

    for name in PAINT_ORDER:
        if name == "torso":
            m = torso
        elif name == "skirt":
            m = skirt_map
        elif name == "head" and (m := _head_map(src, dst, both)) is not None:
            pass
        else:  # a limb (or a head without its face points) moves with its first bone
            (a, b), *_ = BODY_PARTS[name]
            m = _bone_map(src[a], src[b], dst[a], dst[b], mirrored, width_scale) if both[a] and both[b] else None
        if m is None or name not in names or not _plausible(m):
            continue
        pixels = person[owner == names.index(name)].astype(int)
        if len(pixels) == 0:
            continue
        mask = np.zeros((h, w), np.uint8)
        mask[pixels[:, 1], pixels[:, 0]] = 255
        # only the box the part lands in is warped (the high-resolution warp: 3× faster)
        x0, y0 = pixels.min(0) - 2
        x1, y1 = pixels.max(0) + 2
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float32) @ m.T
        bx0, by0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
        bx1, by1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (w, h))
        if bx1 <= bx0 or by1 <= by0:
            continue
        shifted = m - np.array([[0, 0, bx0], [0, 0, by0]], np.float32)
        size = (int(bx1 - bx0), int(by1 - by0))
        part_mask = cv2.warpAffine(mask, shifted, size, flags=cv2.INTER_LINEAR) > 127
        part_image = cv2.warpAffine(image, shifted, size, flags=cv2.INTER_LINEAR, borderValue=(WHITE,) * 3)
        warped[by0:by1, bx0:bx1][part_mask] = part_image[part_mask]
        cover[by0:by1, bx0:bx1][part_mask] = 255
        if labels:  # the parsing label of the nearest source pixel (a neighbouring part's at its edge)
            carried[by0:by1, bx0:bx1][part_mask] = cv2.warpAffine(parts, shifted, size, flags=cv2.INTER_NEAREST)[
                part_mask
            ]
    return done()


def network_inputs(
    image: np.ndarray, parts: np.ndarray, source_kp: np.ndarray, target_kp: np.ndarray, **garments
) -> dict[str, np.ndarray]:
    """The generator's uint8 inputs (no batch axis) from canvas arrays and canvas keypoints (`garments`:
    warp_to_pose's skirt options, Composite.garment_options; the generator was trained without them)."""
    return inputs_around_warp(image, parts, target_kp, *warp_to_pose(image, parts, source_kp, target_kp, **garments))


def inputs_around_warp(
    image: np.ndarray, parts: np.ndarray, target_kp: np.ndarray, warped: np.ndarray, cover: np.ndarray
) -> dict[str, np.ndarray]:
    """network_inputs around a warp already made (training keeps the warp's carried labels too)."""
    return {
        "source": image,
        "parts": parts[..., None],
        "pose": heatmaps(target_kp),
        "warped": np.dstack([warped, cover]),
    }


def source_canvas(
    image: np.ndarray,
    person: np.ndarray,
    fashion: np.ndarray,
    keypoints: np.ndarray,
    size: tuple[int, int] = (CANVAS_W, CANVAS_H),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A full-size photo, its parsing and keypoints (photo pixels) → (person on white, parts, keypoints)
    on the canvas (the generator's, or one `size` = (width, height) of the same aspect)."""
    on_white = np.where(person[..., None] > 0, image, np.uint8(WHITE))
    canvas, box = letterbox(on_white, *size, pad=WHITE)
    parts = letterbox_labels(parts_map(person, fashion), *size)
    return canvas, parts, points_to_canvas(keypoints, box, image.shape[1])


def target_box(width: int, height: int, canvas: tuple[int, int] = (CANVAS_W, CANVAS_H)) -> Box:
    """Where a width×height target canvas lands inside the generator's canvas (or `canvas`)."""
    return fit_box(width, height, *canvas)


def to_target_size(generated: np.ndarray, width: int, height: int) -> np.ndarray:
    """The generator's canvas RGB (or a larger canvas of its aspect) → the target's width×height (the
    letterbox cropped away)."""
    box = target_box(width, height, (generated.shape[1], generated.shape[0]))
    crop = generated[box.y : box.y + box.h, box.x : box.x + box.w]
    # Enlarging: bilinear, not cubic, whose overshoot rings along the person's edge on white
    # (end-to-end SSIM 0.7846 vs 0.7833 on 80 validation photos)
    interp = cv2.INTER_LINEAR if width > box.w else cv2.INTER_AREA
    return cv2.resize(crop, (width, height), interpolation=interp)


# --- the composition at the output's resolution ---
# The generator decides on its 128×192 canvas which pixels to copy from the warp (its gate) and paints
# the rest; the warp itself can be done at any size. So the source is warped again at the output's
# resolution and the canvas's gate, fill and alpha are enlarged onto it: texture the canvas cannot hold
# survives where the gate copies.
MAX_SCALE = 4.0  # the high-resolution canvas is at most 4× the generator's (512×768): the warp's cost


@dataclass(frozen=True)
class Composite:
    """How the canvas's heads are laid over the high-resolution warp (docs/models/pose-transfer.md)."""

    feather: float = 0.0  # σ (px of the high-resolution canvas) blurring the warp's coverage: softer seams
    erode: int = 0  # px the coverage is eroded before the blur, so the seam falls inside the warp
    # the gate below `threshold` counts as 0 and is stretched to 0-1 above it: the sharp warp only where
    # the network is sure of it (elsewhere the canvas result, whose blur the mirror-pose SSIM prefers
    # to a sharp texture a few pixels off); `binary`: 0 below, 1 above
    threshold: float = 0.0
    binary: bool = False
    # σ (px) of a blurred copy of the warp laid under the sharp one by the network's soft gate: the
    # source's colours where the canvas mixed them with paint, without detail that may be misplaced
    colour_sigma: float = 0.0
    fill: str = "canvas"  # under (1 − gate): "canvas" = the generator's result enlarged; "painted" = its paint
    # per-garment colour correction (match_colours): every pixel of the result takes the source part the
    # warp carried there (the nearest carried part where the warp has no pixel), and each of `match_parts`
    # is moved by `colour_match` (a share, 0 = off) toward the source part's CIELAB mean; `match_std`: its
    # spread too (per channel, the ratio clipped to 0.5-2); `match_pixels`: "painted" = measured on and
    # applied to what the composition did not copy from the warp (weighted by 1 − its copied share),
    # "all" = every pixel of the part alike
    colour_match: float = 0.0
    match_pixels: str = "painted"
    match_std: bool = False
    match_parts: tuple[str, ...] = ("t-shirt", "pants", "dress")
    match_lightness: float = 1.0  # × the share for L* (0: only the chroma a*, b* moves; the shading stays)
    # σ (px) of a local goal: each painted pixel moves toward the colour of the warp's pixels of its own part
    # around it (a jacket over a shirt is two colours: one mean per part is neither), from the local mean of
    # the painted pixels of that part; the part's source mean where the warp has none of it near. 0: one goal
    # per part (the source part's mean, and spread with match_std)
    match_sigma: float = 0.0
    # with match_sigma: where the painted colour is farther than this CIELAB distance from the local goal,
    # its L* moves back to within it (more than match_lightness): a white shirt painted grey becomes white
    # again, while the network's shading of a near miss stays; 0: L* moves match_lightness of the way
    match_tolerance: float = 0.0
    # garment-aware ownership in the high-resolution warp (warp_to_pose's `skirt`, one of SKIRT_MAPS; "" off):
    # the pixels of `skirt_parts` a leg bone owns move as one piece; `skirt_canvas`: in the network's input
    # warp too (the generator was trained without it)
    skirt: str = ""
    skirt_parts: tuple[str, ...] = ("dress",)
    skirt_canvas: bool = False
    skirt_to: str = "ankles"  # "knees": only the garment pixels the thighs own join the skirt
    # the source's person mask as /v1/segment refines it (dense CRF, backdrop snap): less background carried
    # into the generator; `source_limbs` (× torso length): the network's own person kept on the limbs the
    # pose draws, where the CRF cut them (fashionpixel.reading.read_person's limbs_kept)
    source_crf: bool = False
    source_limbs: float = 0.0

    def garment_options(self) -> dict:
        """warp_to_pose's garment-aware ownership as this composition sets it."""
        return {"skirt": self.skirt, "skirt_parts": self.skirt_parts, "skirt_to": self.skirt_to}


# chosen on the validation split (docs/models/pose-transfer.md, "The warp at the output's resolution",
# "Per-garment colour correction", "Garment-aware part ownership" and "The source's outline refined,
# its limbs kept")
SERVED_COMPOSITE = Composite(
    threshold=0.4,
    colour_sigma=6.0,
    colour_match=1.0,
    match_std=True,
    match_lightness=0.5,
    skirt="hips",
    skirt_parts=("dress", "other clothing"),
    skirt_canvas=True,
    source_crf=True,
    source_limbs=0.3,
)


def highres_canvas(width: int, height: int) -> tuple[int, int]:
    """The (width, height) of the canvas on which a width×height target is composed: the generator's
    scaled so the target's box in it is as large as the target, between 1× and MAX_SCALE×."""
    scale = float(np.clip(width / target_box(width, height).w, 1.0, MAX_SCALE))
    return round(CANVAS_W * scale), round(CANVAS_H * scale)


MIN_MATCH_PIXELS = 50  # a source part smaller than this (high-resolution pixels) gives no colour to match


@dataclass(frozen=True)
class CarriedParts:
    """The source's parts carried by the high-resolution warp, and each source part's colour."""

    labels: np.ndarray  # H×W uint8 part index where the warp has a pixel, else 0
    colours: dict[int, tuple[np.ndarray, np.ndarray]]  # part index → (CIELAB mean, std) on the source


def lab_stats(lab: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None):
    """Per label of N pixels' CIELAB colours (N×3): (total weight, mean, std), each indexed by the label
    (PARTS rows), weighted by `weights` (default 1)."""
    w = np.ones(len(labels), np.float64) if weights is None else weights.astype(np.float64)
    total = np.bincount(labels, w, PARTS)
    safe = np.maximum(total, 1e-9)[:, None]
    mean = np.stack([np.bincount(labels, w * lab[:, c], PARTS) for c in range(3)], 1) / safe
    centred = lab - mean[labels]
    var = np.stack([np.bincount(labels, w * centred[:, c] ** 2, PARTS) for c in range(3)], 1) / safe
    return total, mean, np.sqrt(var)


def part_lab_stats(image: np.ndarray, parts: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{part index: (mean, std) of its CIELAB colour (OpenCV's float Lab: L 0-100)} for the person's
    parts with at least MIN_MATCH_PIXELS pixels (every other row and column: the statistics of a part
    do not need every pixel)."""
    image, parts = image[::2, ::2], parts[::2, ::2]
    person = parts > 0
    if not person.any():  # nobody found: nothing to match (OpenCV refuses an empty image)
        return {}
    lab = cv2.cvtColor(image[person][None].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0]
    count, mean, std = lab_stats(lab, parts[person])
    return {k: (mean[k], std[k]) for k in range(1, PARTS) if count[k] * 4 >= MIN_MATCH_PIXELS}


def highres_warp(
    source: np.ndarray,
    person: np.ndarray,
    fashion: np.ndarray,
    source_kp: np.ndarray,
    target_kp: np.ndarray,
    target_size: tuple[int, int],
    labels: bool = False,
    **garments,
) -> tuple:
    """warp_to_pose on the high-resolution canvas of the target (keypoints in photo pixels): (warp,
    coverage), and with `labels` a third item, the CarriedParts the colour correction needs; `garments`:
    warp_to_pose's skirt options (Composite.garment_options)."""
    size = highres_canvas(*target_size)
    image, parts, kp = source_canvas(source, person, fashion, source_kp, size)
    target = points_to_canvas(target_kp, target_box(*target_size, size), target_size[0])
    if not labels:
        return warp_to_pose(image, parts, kp, target, **garments)
    warped, cover, carried = warp_to_pose(image, parts, kp, target, labels=True, **garments)
    return warped, cover, CarriedParts(carried, part_lab_stats(image, parts))


def nearest_labels(labels: np.ndarray) -> np.ndarray:
    """Every pixel's nearest non-zero label (the labels themselves where non-zero); all 0 without any."""
    have = labels > 0
    if have.all() or not have.any():
        return labels
    _, index = cv2.distanceTransformWithLabels((~have).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    return labels[have][index - 1]  # DIST_LABEL_PIXEL numbers the zero pixels in raster order


def _local_mean(lab: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The `weight`ed Gaussian mean of H×W×3 `lab` around every pixel, and the blurred weight itself."""
    total = cv2.GaussianBlur(weight, (0, 0), sigma)
    mean = cv2.GaussianBlur(lab * weight[..., None], (0, 0), sigma) / np.maximum(total, 1e-6)[..., None]
    return mean, total


LOCAL_SUPPORT = 0.05  # blurred share of a part's warp pixels above which its local colour is trusted in full


def match_local(
    rgb: np.ndarray, alpha: np.ndarray, copied: np.ndarray, carried: CarriedParts, warped: np.ndarray, how: Composite
) -> np.ndarray:
    """match_colours with a local goal (how.match_sigma): in each garment part, the painted pixels move by
    the difference between the local colour of the warp's pixels of that part and their own local mean."""
    labels = nearest_labels(carried.labels)
    lab = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2Lab)
    warp_lab = cv2.cvtColor(warped.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    painted = (1 - copied) * alpha if how.match_pixels == "painted" else alpha
    out = lab.copy()
    for name in how.match_parts:
        k = PART_NAMES.index(name)
        region = (labels == k) & (alpha > 0.5)
        if k not in carried.colours or not region.any():
            continue
        goal, support = _local_mean(warp_lab, (carried.labels == k).astype(np.float32), how.match_sigma)
        trust = np.clip(support / LOCAL_SUPPORT, 0, 1)[..., None]  # far from the part's warp: its source mean
        goal = trust * goal + (1 - trust) * carried.colours[k][0].astype(np.float32)
        now, _ = _local_mean(lab, (region * painted).astype(np.float32), how.match_sigma)
        move = goal - now
        lightness = how.match_lightness  # L* part of the way: the network's shading stays
        if how.match_tolerance:  # ... but a gross miss comes back to within the tolerance
            far = np.linalg.norm(move, axis=2)
            lightness = np.maximum(lightness, 1 - how.match_tolerance / np.maximum(far, 1e-6))
        move[..., 0] *= lightness
        out[region] += (how.colour_match * painted[region])[:, None] * move[region]
    return cv2.cvtColor(out, cv2.COLOR_Lab2RGB)


def match_colours(
    rgb: np.ndarray,
    alpha: np.ndarray,
    copied: np.ndarray,
    carried: CarriedParts,
    how: Composite,
    warped: np.ndarray | None = None,
) -> np.ndarray:
    """The per-garment colour correction of a float RGB (0-1) result on the high-resolution canvas:
    `alpha` the person's, `copied` the share of each pixel that is the warp's own pixels; with
    how.match_sigma and the high-resolution `warped` image, a local goal (match_local)."""
    if how.match_sigma and warped is not None:
        return match_local(rgb, alpha, copied, carried, warped, how)
    labels = nearest_labels(carried.labels)
    ids = [PART_NAMES.index(n) for n in how.match_parts if PART_NAMES.index(n) in carried.colours]
    select = (alpha > 0.5) & np.isin(labels, ids)
    if not ids or not select.any():
        return rgb
    lab = cv2.cvtColor(rgb[select][None].astype(np.float32), cv2.COLOR_RGB2Lab)[0]
    part = labels[select].astype(np.intp)
    measured = (1 - copied[select]) if how.match_pixels == "painted" else np.ones(len(part), np.float32)
    total, mean, std = lab_stats(lab, part, measured)
    # per part and channel the goal is scale × colour + offset: the source's mean (and spread)
    scale, offset = np.ones((PARTS, 3)), np.zeros((PARTS, 3))
    for k in ids:
        if total[k] < MIN_MATCH_PIXELS * 0.1:  # (nearly) all copied: nothing painted to correct
            continue
        source_mean, source_std = carried.colours[k]
        if how.match_std:
            scale[k] = np.clip(source_std / np.maximum(std[k], 1e-3), 0.5, 2.0)
        offset[k] = source_mean - scale[k] * mean[k]
    # L* moves by match_lightness of the way: the network's shading is kept in part
    scale[:, 0] = 1 + how.match_lightness * (scale[:, 0] - 1)
    offset[:, 0] *= how.match_lightness
    share = (how.colour_match * alpha[select] * measured)[:, None]
    lab += share * ((scale[part] - 1) * lab + offset[part]).astype(np.float32)
    out = rgb.copy()
    out[select] = cv2.cvtColor(lab[None], cv2.COLOR_Lab2RGB)[0]
    return out


def compose_highres(
    heads: tuple[np.ndarray, ...],
    warped_hr: np.ndarray,
    cover_hr: np.ndarray,
    how: Composite,
    carried: CarriedParts | None = None,
) -> np.ndarray:
    """The generator's canvas `heads` (image, gate, alpha, painted) and the high-resolution warp and
    coverage → uint8 RGB on the high-resolution canvas, on white, every canvas map enlarged:
    g × (the sharp warp on white by the alpha) + (1 − g) × base, g the gate as `how` shapes it times the
    coverage; base = the fill, under the blurred warp by the soft gate when `how.colour_sigma`.
    Both terms are on white before they are mixed: an enlarged alpha times an enlarged colour would mix
    the painted colour outside the person (never trained) into the silhouette's edge. With
    `how.colour_match` and the `carried` parts, the garments are then colour-corrected (match_colours)."""
    image, gate, alpha, painted = (h.astype(np.float32) / 255 for h in heads)
    size = cover_hr.shape[::-1]

    def up(a: np.ndarray) -> np.ndarray:
        out = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
        return out if out.ndim == 3 else out[..., None]

    # "canvas": the generator's result, which already holds the blurred warp where it copied
    fill = alpha * painted + (1 - alpha) if how.fill == "painted" else image
    soft = gate
    if how.binary:
        gate = (gate >= how.threshold).astype(np.float32)
    elif how.threshold:
        gate = np.clip((gate - how.threshold) / (1 - how.threshold), 0, 1)
    cover = cover_hr.astype(np.float32) / 255
    if how.erode:
        cover = cv2.erode(cover, np.ones((2 * how.erode + 1,) * 2, np.uint8))
    if how.feather:
        cover = cv2.GaussianBlur(cover, (0, 0), how.feather)
    g, a = up(gate) * cover[..., None], up(alpha)
    sharp = a * (warped_hr.astype(np.float32) / 255) + (1 - a)
    base = up(fill)
    copied = g  # the share of each pixel that is the warp's own pixels (sharp or blurred)
    if how.colour_sigma:
        weight = cv2.GaussianBlur(cover, (0, 0), how.colour_sigma)[..., None]
        # blurred within the coverage (normalised), so the white around the warp does not bleed in
        blurred = cv2.GaussianBlur(sharp * cover[..., None], (0, 0), how.colour_sigma) / np.maximum(weight, 1e-3)
        low = up(soft) * weight
        base = low * blurred + (1 - low) * base
        copied = g + (1 - g) * low
    out = g * sharp + (1 - g) * base
    if how.colour_match and carried is not None:
        out = match_colours(out, a[..., 0], copied[..., 0], carried, how, warped_hr)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


async def transfer(
    source: np.ndarray,
    *,
    target: np.ndarray | None = None,
    target_keypoints: np.ndarray | None = None,
    target_size: tuple[int, int] | None = None,
    network: Network,
    generate: Infer,
    cpu: Cpu,
    stage: Stage,
    assess: quality.Assessment | None = None,
    composite: Composite | None = SERVED_COMPOSITE,
) -> np.ndarray:
    """The source person rendered in the target pose → RGB (target height × width) on white.

    The target is a photo (`target`, whose pose is estimated and whose size is the output's) or
    keypoints (`target_keypoints` 18×2/18×3 in pixels of a `target_size` = (width, height) canvas).
    `network` answers the segmentation and pose models (fashionpixel.reading: the source's person,
    parsing and pose, and the target photo's pose, as /v1/segment and /v1/pose read them);
    generate(inputs dict) → the generator's (image, gate, alpha, painted) on this module's canvas (or
    the image alone with `composite` None: the canvas result enlarged). `assess`, when
    given, receives the quality features of the source's person, parsing and pose, and of the target
    photo's pose. `composite`: how the result is composed at the output's resolution (compose_highres)."""
    pose = infer_with(network, POSE)
    refine = composite is not None and composite.source_crf
    limbs = composite.source_limbs if refine else 0.0
    jobs = [
        read_person(
            source, network=network, cpu=cpu, stage=stage, refine_person=refine, limbs_kept=limbs, assess=assess
        )
    ]
    if target is not None:
        target_size = (target.shape[1], target.shape[0])
        jobs.append(
            keypoint_net.estimate(target, infer=pose, infer_crops=infer_with(network, POSE_CROPS), cpu=cpu, stage=stage)
        )
    read, *target_read = await asyncio.gather(*jobs)
    person, fashion, source_kp = read.person, read.fashion, read.keypoints
    if target is not None:
        target_keypoints = target_read[0]
        if assess is not None:
            assess.add("pose", quality.pose_features(target_keypoints), part="target_pose")
    source_kp, target_keypoints = without_stray_face_points(source_kp), without_stray_face_points(target_keypoints)
    with stage("postprocess"):
        image, parts, canvas_kp = await cpu(source_canvas, source, person, fashion, source_kp)
        tw, th = target_size
        target_kp = points_to_canvas(target_keypoints, target_box(tw, th), tw)
        garments = composite.garment_options() if composite and composite.skirt_canvas else {}
        inputs = await cpu(partial(network_inputs, **garments), image, parts, canvas_kp, target_kp)
    if composite is None:
        with stage("infer"):
            generated = await generate(inputs)
        with stage("postprocess"):
            return await cpu(to_target_size, generated, tw, th)
    # the colour correction needs the source's parts carried too
    warp_hr = partial(highres_warp, labels=bool(composite.colour_match), **composite.garment_options())
    with stage("infer"):  # the high-resolution warp runs while the generator does
        heads, warp = await asyncio.gather(
            generate(inputs), cpu(warp_hr, source, person, fashion, source_kp, target_keypoints, target_size)
        )
    with stage("postprocess"):
        composed = await cpu(compose_highres, heads, *warp[:2], composite, *warp[2:])
        return await cpu(to_target_size, composed, tw, th)
