"""OpenPose COCO-18 keypoints: names, left/right pairs, limbs, heatmap decoding and the limb image.

One drawing utility for everything that draws poses: the services and the generators' training data.
"""

import cv2
import numpy as np

KEYPOINTS = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
# Mirroring an image swaps the person's right and left.
FLIP_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))
FLIP_INDEX = np.arange(18)
for _a, _b in FLIP_PAIRS:
    FLIP_INDEX[_a], FLIP_INDEX[_b] = _b, _a
# OpenPose's 17 limbs of the COCO-18 skeleton, with its customary colours (RGB).
LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
COLOURS = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)


def found(keypoints: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Which of 18×2 (x, y) or 18×3 (x, y, score) keypoints are there: non-negative coordinates
    (and a score above `min_score`, when scores are given)."""
    k = np.asarray(keypoints, np.float32)
    ok = (k[:, 0] >= 0) & (k[:, 1] >= 0)
    return ok & (k[:, 2] > min_score) if k.shape[1] > 2 else ok


FACE_POINTS = (14, 15, 16, 17)  # eyes and ears
STRAY_FACE_POINT = 1.0  # × the nose-to-neck distance: no eye or ear lies this far from the nose


def without_stray_face_points(keypoints: np.ndarray, limit: float = STRAY_FACE_POINT) -> np.ndarray:
    """The keypoints with every eye or ear farther than `limit` × the nose-to-neck distance from the nose
    marked not found (a copy). Such a point is another person's or the background's; in a face it pulls the
    head's map and draws a limb to nowhere (docs/models/pose-transfer.md, "Known failure cases")."""
    k = np.array(keypoints, np.float32)
    ok = found(k)
    if not (ok[0] and ok[1]):
        return k
    reach = limit * float(np.hypot(*(k[0, :2] - k[1, :2])))
    for i in FACE_POINTS:
        if ok[i] and np.hypot(*(k[i, :2] - k[0, :2])) > reach:
            k[i] = -1
            if k.shape[1] > 2:
                k[i, 2] = 0
    return k


CHAINS = ((2, 3, 4), (5, 6, 7), (8, 9, 10), (11, 12, 13), (1, 0))  # arms, legs, neck to nose
TORSO = (2, 5, 11, 8)  # shoulders and hips, a filled quadrilateral


def torso_length(keypoints: np.ndarray) -> float | None:
    """Neck to the middle of the hips seen: the body's scale."""
    ok = found(keypoints)
    hips = [i for i in (8, 11) if ok[i]]
    if not ok[1] or not hips:
        return None
    return float(np.hypot(*(keypoints[hips, :2].mean(0) - keypoints[1, :2])))


def skeleton_mask(keypoints: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray | None:
    """The limbs seen drawn `width` × torso length thick, and the torso filled; None without a torso."""
    length = torso_length(keypoints)
    if not length:
        return None
    k, ok = np.round(keypoints[:, :2]).astype(np.int32), found(keypoints)
    mask = np.zeros(shape, np.uint8)
    for chain in CHAINS:
        seen = [j for j in chain if ok[j]]  # a missing elbow or knee: shoulder to wrist, hip to ankle
        for a, b in zip(seen, seen[1:]):
            cv2.line(mask, tuple(map(int, k[a])), tuple(map(int, k[b])), 1, max(2, round(width * length)))
    if ok[list(TORSO)].all():
        cv2.fillPoly(mask, [k[list(TORSO)]], 1)
    return mask.astype(bool)


def draw_pose(
    keypoints: np.ndarray, width: int, height: int, thickness: int | None = None, min_score: float = 0.0
) -> np.ndarray:
    """18×2 (x, y) or 18×3 (x, y, score) keypoints → HxWx3 uint8 limb image on black.

    A keypoint is drawn when its coordinates are non-negative (and its score, if given, > min_score).
    """
    canvas = np.zeros((height, width, 3), np.uint8)
    k = np.asarray(keypoints, dtype=np.float32)
    ok = found(k, min_score)
    t = thickness or max(2, round(min(width, height) / 64))
    for i, (a, b) in enumerate(LIMBS):
        if ok[a] and ok[b]:
            cv2.line(
                canvas,
                tuple(np.round(k[a, :2]).astype(int)),
                tuple(np.round(k[b, :2]).astype(int)),
                COLOURS[i],
                t,
                cv2.LINE_AA,
            )
    for i in np.nonzero(ok)[0]:
        cv2.circle(canvas, tuple(np.round(k[i, :2]).astype(int)), t + 1, COLOURS[i], -1, cv2.LINE_AA)
    return canvas


def decode_heatmaps(heatmaps: np.ndarray, stride: float) -> np.ndarray:
    """18×h×w heatmaps → 18×3 (x, y, score) in input-canvas pixels, with sub-pixel refinement:
    the peak moves a quarter cell towards the higher neighbour on each axis (as in HRNet/OpenPose)."""
    n, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, -1)
    idx = flat.argmax(1)
    ys, xs = np.divmod(idx, w)
    out = np.zeros((n, 3), np.float32)
    for j in range(n):
        x, y = int(xs[j]), int(ys[j])
        hm = heatmaps[j]
        dx = np.sign(hm[y, min(x + 1, w - 1)] - hm[y, max(x - 1, 0)]) * 0.25 if 0 < x < w - 1 else 0.0
        dy = np.sign(hm[min(y + 1, h - 1), x] - hm[max(y - 1, 0), x]) * 0.25 if 0 < y < h - 1 else 0.0
        # heatmap cell centres sit at (i + 0.5) * stride - 0.5 in input pixels
        out[j] = ((x + dx + 0.5) * stride - 0.5, (y + dy + 0.5) * stride - 0.5, float(hm[y, x]))
    return out
