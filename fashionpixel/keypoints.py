"""The pose pipeline around the keypoint network, shared by the service and the evaluation command.

Focus pass (on by default, as in segmentation and cutout): when the keypoints the first pass found
span a small part of the photo (a small figure in a wide shot or on a padded canvas), the network looks
again at a crop around them, where the person fills its canvas as in training, and that crop's
keypoints are the answer.

Crop specialist: when the first pass finds the neck but neither ankle or no part of the face, the
photo cuts the person (a waist-up, knee-up or chin-down product crop), and a second network trained on
such crops only (`pose_crops`) answers instead; the general network stays the one for full figures.
"""

import asyncio

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
# look again only when the crop is seen ≥ 1.7× larger a side (a crop of ≤ 35 % of a portrait photo)
FOCUS_MIN_GAIN = 1.7
NECK, ANKLES, FACE = 1, (10, 13), (0, 14, 15, 16, 17)  # KEYPOINTS' indices (fashionpixel/pose.py)
# Segmentation and cutout ask the pose network where the person is when their own first pass finds
# foreground on less than this share of the photo. 5th percentiles of the validation photos in the
# full, studio and square framings: person 0.11, outfit (cutout) 0.07; 90th in the small framing:
# 0.02 and 0.01. There the parsers' first pass often takes a busy background for the small person.
SMALL_SHARE = 0.05
# cut_by_frame counts an ankle as in the frame only from this score: on a few waist-up crops the network
# places a faint ankle at the bottom edge (0.28-0.49) as if the legs went on (docs/models/segmentation.md)
ANKLE_SEEN = 0.5
LOCATE_WINDOW = 0.45  # locate_person's windows: this share of the photo's height
LOCATE_MAX_AREA = 0.35  # locate_person's crop covers at most this share of the photo
LOCATE_MIN_HEIGHT = 0.1  # ... and at least this share of its height: a smaller one is a pattern, not a person
STRONGEST = 8  # a look's strength: the mean score of its 8 strongest peaks
LOOK_AGAIN = 0.3  # estimate's focus pass searches the windows too when the first look is weaker than this


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


def cut_by_frame(keypoints: np.ndarray, threshold: float = SCORE_THRESHOLD) -> bool:
    """Whether the first pass's keypoints say the frame cuts the person: the neck is found, but no ankle
    surely seen (cut at the hips or the knees) or nothing of the face (cut at the chin)."""
    found = keypoints[:, 2] >= threshold
    ankle = (keypoints[list(ANKLES), 2] >= ANKLE_SEEN).any()
    return bool(found[NECK] and (not ankle or not found[list(FACE)].any()))


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
    return focus_crop(x0, y0, x1, y1, POSE.canvas, width, height, FOCUS_MIN_GAIN)


async def look(image: np.ndarray, region: Region | None = None, *, infer: Infer, cpu: Cpu, stage: Stage) -> np.ndarray:
    """The network's keypoints (threshold 0) of `region` of the photo (default: all of it), in photo pixels."""
    crop = image if region is None else image[region.y0 : region.y1, region.x0 : region.x1]
    with stage("preprocess"):
        canvas, box = await cpu(prepare, crop)
    with stage("infer"):
        heatmaps = await infer(canvas)
    with stage("postprocess"):
        k = await cpu(keypoints_from_heatmaps, heatmaps, box, crop.shape[1], crop.shape[0], 0.0)
    if region is not None:
        k[:, :2] += (region.x0, region.y0)
    return k


class WholeLook:
    """The pose network's look at the whole photo (`look`), taken at most once per request. `ahead`: asked
    at once, to run beside the caller's other network calls, whether or not it is needed later."""

    def __init__(self, image: np.ndarray, *, infer: Infer, cpu: Cpu, stage: Stage, ahead: bool = False):
        self._ask = lambda: asyncio.ensure_future(look(image, infer=infer, cpu=cpu, stage=stage))
        self._task = self._ask() if ahead else None

    async def get(self) -> np.ndarray:
        """The keypoints (threshold 0, photo pixels); read them, do not change them."""
        if self._task is None:
            self._task = self._ask()
        return await self._task

    async def settle(self) -> None:
        """Wait for a look asked ahead that nobody awaited, and drop its error: it is never cancelled,
        since its Triton call writes into a shared-memory region that is lent to the next call once the
        call ends."""
        if self._task is not None:
            try:
                await self._task
            except Exception:  # noqa: BLE001 - the request's own error, if any, is what the client hears
                pass


def windows(width: int, height: int) -> list[Region]:
    """Overlapping windows over the photo, LOCATE_WINDOW of its height tall at the canvas's aspect, in
    as many rows and columns as overlap by half: where a small person fills enough of the window."""
    wh = max(1, round(height * LOCATE_WINDOW))
    ww = min(width, round(wh * CANVAS_W / CANVAS_H))

    def starts(size: int, window: int) -> np.ndarray:
        return np.linspace(0, size - window, max(2, int(np.ceil((size - window) / (window / 2))) + 1)).round()

    return [Region(int(x), int(y), int(x) + ww, int(y) + wh) for y in starts(height, wh) for x in starts(width, ww)]


def strength(keypoints: np.ndarray) -> float:
    """How surely a look saw a person: the mean score of its STRONGEST peaks."""
    return float(np.sort(keypoints[:, 2])[-STRONGEST:].mean())


async def locate_person(
    image: np.ndarray, *, infer: Infer, cpu: Cpu, stage: Stage, first: np.ndarray | None = None
) -> Region | None:
    """Where the pose network sees a person who fills little of the photo, as a focus crop around the
    keypoints (focus_region); None when it sees no one or the person is already large. It looks at
    the whole photo and in `windows`, and keeps the surest look: a person 30 % of the photo high is
    found in 84-91 % of the validation photos this way, against 66-73 % in the whole photo alone.
    `first`: the whole photo's keypoints (threshold 0), when a look at it was already taken."""
    return located(await person_looks(image, infer=infer, cpu=cpu, stage=stage, first=first), *image.shape[1::-1])


async def person_looks(
    image: np.ndarray, *, infer: Infer, cpu: Cpu, stage: Stage, first: np.ndarray | None = None
) -> list[tuple[float, Region | None]]:
    """The looks locate_person weighs, surest first: (strength, the look's focus crop or None)."""
    h, w = image.shape[:2]
    whole = first if first is not None else await look(image, infer=infer, cpu=cpu, stage=stage)
    # all windows at once: Triton batches them, instead of one round trip after another
    looks = [whole, *await asyncio.gather(*(look(image, r, infer=infer, cpu=cpu, stage=stage) for r in windows(w, h)))]
    # A texture (railings, leaves) can draw a sure skeleton a few dozen pixels high: such a look does not
    # compete. A look without a crop does, and winning it says the person is large (a window of a large
    # person sees part of them: a crop there would cut them).
    candidates = [
        (strength(k), r) for k in looks if (r := focus_region(k, w, h)) is None or r.y1 - r.y0 >= LOCATE_MIN_HEIGHT * h
    ]
    return sorted(candidates, key=lambda c: -c[0])


def located(looks: list[tuple[float, Region | None]], width: int, height: int) -> Region | None:
    """The surest look's crop, if it shows a small person."""
    region = looks[0][1] if looks else None
    return region if region is not None and is_small(region, width, height) else None


def is_small(region: Region, width: int, height: int) -> bool:
    """A person found across most of a wide photo is not small: more likely a look gone astray."""
    return (region.x1 - region.x0) * (region.y1 - region.y0) <= LOCATE_MAX_AREA * width * height


async def estimate(
    image: np.ndarray,
    *,
    infer: Infer,
    cpu: Cpu,
    stage: Stage,
    assess: quality.Assessment | None = None,
    focus: bool = True,
    threshold: float = SCORE_THRESHOLD,
    infer_crops: Infer | None = None,
) -> np.ndarray:
    """The pose of one photo → 18×3 (x, y, score) in photo pixels, peaks below `threshold` "not found".
    infer(canvas) → 18×h×w heatmaps; infer_crops, the crop specialist's (see the module doc). `focus`:
    the second pass on a small person. `assess`, when given, receives the keypoints' quality features
    (task "pose")."""
    h, w = image.shape[:2]
    with stage("preprocess"):
        canvas, box = await cpu(prepare, image)
    with stage("infer"):
        heatmaps = await infer(canvas)
    with stage("postprocess"):
        keypoints = await cpu(keypoints_from_heatmaps, heatmaps, box, w, h, 0.0)
    if infer_crops is not None and cut_by_frame(keypoints) and focus_region(keypoints, w, h) is None:
        with stage("infer"):
            heatmaps = await infer_crops(canvas)
        with stage("postprocess"):
            keypoints = await cpu(keypoints_from_heatmaps, heatmaps, box, w, h, 0.0)
    region = focus_region(keypoints, w, h) if focus else None
    if region is not None or (focus and strength(keypoints) < LOOK_AGAIN):  # small or unseen: look around
        region = await locate_person(image, infer=infer, cpu=cpu, stage=stage, first=keypoints)
    if region is not None:
        keypoints = await look(image, region, infer=infer, cpu=cpu, stage=stage)
    keypoints[keypoints[:, 2] < threshold] = (-1, -1, 0)
    if assess is not None:
        assess.add("pose", quality.pose_features(keypoints))
    return keypoints
