"""The segmentation pipeline around the network, shared by the service and the evaluation command:
letterbox the photo into the canvas, and turn canvas probabilities into full-size labels.

Focus pass: a person who fills little of the photo (a wide lifestyle shot, a small figure on a
padded canvas) covers a few dozen canvas pixels. When the first pass finds the foreground in a small
part of the photo, the network looks again at a crop around it, at the canvas's aspect, and its
probabilities replace the first pass's inside the crop (docs/models/segmentation.md, shop framings).
When the first pass finds little foreground, the pose network says where to look
(fashionpixel.keypoints.locate_person): on a busy background the parser's own first pass often
mistakes the background for the small person.

Crop specialist: a product photo often cuts the person at the hips, the knees or the chin. When the
photo does (`cut_by_frame`: the first pass's foreground reaches its top or bottom edge, and the pose
network finds the neck but no ankle or nothing of the face; the general network's own routing head
answers that where it is sure, sparing the pose network), a second network trained on such crops
only (`segmentation_crops`) answers instead: the general network stays the one for full figures,
where it is best. The fashion parsing's focus pass asks the specialist too
(`focus_by_specialist`): its crop is a person who fills the frame. The person mask takes the other
network's second opinion in both places (`second_opinion`)."""

import asyncio

import cv2
import numpy as np

from fashionpixel import keypoints, quality
from fashionpixel.letterbox import Box, Region, bounding_region, focus_crop, letterbox, unletterbox
from fashionpixel.models import SEGMENTATION
from fashionpixel.refine import PERSON_CRF, CrfParams, dense_crf, refine, snap_to_backdrop, work_size
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = SEGMENTATION.canvas
# Post-processing runs at most at this size; labels are then resized (nearest) to the photo's size.
MAX_WORK_PIXELS = 1_000_000
FOCUS_MARGIN = 0.1  # the focus crop: the foreground's box grown by this share of its longer side
# focus when the crop is seen ≥ 1.25× larger a side than in the first pass: chosen on the validation
# photos (docs/models/segmentation.md); a padded square photo's person gains 1.5×
FOCUS_MIN_GAIN = 1.25
# the pose network is asked whether the frame cuts the person only when the foreground's width along
# the photo's top or bottom edge is at least this share of its widest row (nearly every crop; about a
# quarter of full figures, whose feet touch the edge; the pose network then says no)
CROP_EDGE = 0.05
EDGE_ROWS = 0.02  # the edge band, as a share of the photo's height
# the edge test counts a pixel as foreground when its background probability is up to this, not 0.5:
# a crop whose lower body the first pass half-misses still reaches the edge (waist-up +0.005 person
# IoU; the pose network asked for 57 % of full photos instead of 43 %; docs/models/segmentation.md)
EDGE_FOREGROUND = 0.8
# A window's crop cuts the person through (window_confirmed) when the foreground (p >= 0.5) along its
# top or bottom edge is at least this share of its widest row. On the validation photos: a small
# person's feet or shadow 0.00-0.30 of it, a large person's window cut at the legs 0.56. The looser
# edge test above (any foreground, 5 %) turned the small people away too.
WINDOW_CUT = 0.5
# The person mask takes a second opinion where both networks have seen the picture: the network the
# picture is for leads and the other adds this share. A photo routed to the crop specialist keeps this
# much of the first pass (at hand already: no network pass); the general network settles the specialist's
# unsure pixels, such as spill onto a door beside the person, while below 0.5 what the specialist is sure
# of stays its own. A small person's focus crop is the general network's, with this much of the
# specialist's (one more pass, on such photos only). Validation person mean IoU with the share at
# 0 / 0.15 / 0.25 / 0.35 / 0.5, routed: waist-up 0.9006 / 0.9034 / 0.9053 / 0.9053 (0.3) / 0.8843; focus
# crop: small 0.8878 / 0.8921 / 0.8934 / 0.8930 / 0.8873, square 0.9373 / 0.9381 / 0.9388 / 0.9395 /
# 0.9397 (docs/models/segmentation.md). The parsing lost from it (routed, waist-up fashion 0.5562 → 0.5283
# at 0.3), so it takes no second opinion.
SECOND_OPINION = 0.25
# The general network's routing head (export/routing_head.py, fitted by training.fit_routing to the pose
# network's answers) decides alone when its probability that the frame cuts the person is at most
# SURE_WHOLE or at least SURE_CUT; between them the pose network is asked, as before. On the validation
# photos that pass the gates it decides 63 % of them and differs from the pose network on 3 of those
# 567, each a crop the pose network took for a whole figure (docs/models/segmentation_routing.md).
SURE_WHOLE, SURE_CUT = 0.02, 0.98


def prepare(image: np.ndarray) -> tuple[np.ndarray, Box]:
    return letterbox(image, CANVAS_W, CANVAS_H)


def focus_input(image: np.ndarray, region: Region) -> tuple[np.ndarray, Box]:
    """The focus pass's network input: `region` of the photo on the canvas, and where it sits there."""
    return prepare(image[region.y0 : region.y1, region.x0 : region.x1])


def foreground(probs: np.ndarray, box: Box, background_at_most: float = 0.5) -> np.ndarray:
    """The first pass's foreground (any class but 0, background) over the photo's part of the canvas:
    where the background's probability is at most `background_at_most`."""
    return probs[0, box.y : box.y + box.h, box.x : box.x + box.w].astype(np.float32, copy=False) <= background_at_most


def focus_region(probs: np.ndarray, box: Box, width: int, height: int) -> Region | None:
    """The photo's crop worth a second look: around the first pass's foreground, at the canvas's
    aspect; None when the foreground is absent or already large."""
    found = bounding_region(foreground(probs, box), FOCUS_MARGIN, pad=2)
    if found is None:
        return None
    scale = width / box.w  # canvas → photo pixels
    x0, y0, x1, y1 = (v * scale for v in (found.x0, found.y0, found.x1, found.y1))
    return focus_crop(x0, y0, x1, y1, SEGMENTATION.canvas, width, height, FOCUS_MIN_GAIN)


def touches_edge(
    probs: np.ndarray, box: Box, share: float = CROP_EDGE, background_at_most: float = EDGE_FOREGROUND
) -> bool:
    """Whether the first pass's foreground runs out of the photo at its top or bottom edge, as in a
    waist-up, knee-up or chin-down product crop (or at a full figure's feet): its width along the edge
    is at least `share` of its widest row."""
    widths = foreground(probs, box, background_at_most).sum(1)
    widest = widths.max()
    if widest == 0:
        return False
    k = max(2, round(EDGE_ROWS * len(widths)))
    return bool(max(widths[:k].mean(), widths[-k:].mean()) >= share * widest)


def head_is_sure(head):
    """Whether the routing head's answer (a number, or an array of them) decides alone: at most
    SURE_WHOLE or at least SURE_CUT."""
    return (head <= SURE_WHOLE) | (head >= SURE_CUT)


def may_be_cut(probs: np.ndarray, box: Box) -> bool:
    """The routing's cheap gates: the first pass's foreground touches the top or bottom edge. A person
    the first pass hardly sees (under SMALL_SHARE of the photo) is the focus pass's, not the specialist's:
    on a small figure's busy canvas the soft edge test can reach an edge (every crop routed on the
    validation photos covers at least 10 % of its photo)."""
    return foreground_share(probs, box) >= keypoints.SMALL_SHARE and touches_edge(probs, box)


async def cut_by_frame(
    image: np.ndarray,
    probs: np.ndarray,
    box: Box,
    *,
    pose: Infer,
    cpu: Cpu,
    stage: Stage,
    whole: keypoints.WholeLook | None = None,
    head: float | None = None,
) -> bool:
    """Whether the photo cuts the person: it passes the gates (may_be_cut) and the general network's
    routing head is sure of it (`head`, its `cut` output: at least SURE_CUT) or, where the head is unsure
    or absent, the pose network's keypoints say so (fashionpixel.keypoints.cut_by_frame). `whole`: the
    request's look at the whole photo, if taken."""
    if not may_be_cut(probs, box):
        return False
    if head is not None and head_is_sure(head):
        return head >= SURE_CUT
    whole = whole or keypoints.WholeLook(image, infer=pose, cpu=cpu, stage=stage)
    return keypoints.cut_by_frame(await whole.get())


def second_opinion(lead: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The person mask's probabilities from the network that leads, with SECOND_OPINION of the other's;
    a parsing (7 classes) is the lead's alone."""
    if len(lead) != 2:
        return lead
    share = np.float32(SECOND_OPINION)
    return (1 - share) * lead.astype(np.float32, copy=False) + share * other.astype(np.float32, copy=False)


def foreground_share(probs: np.ndarray, box: Box) -> float:
    """The share of the photo the first pass calls foreground."""
    return float(foreground(probs, box).mean())


async def focus_target(
    image: np.ndarray,
    probs: np.ndarray,
    box: Box,
    *,
    pose: Infer | None,
    cpu: Cpu,
    stage: Stage,
    infer: Infer | None = None,
    whole: keypoints.WholeLook | None = None,
) -> Region | None:
    """Where the focus pass looks, if anywhere: around the first pass's foreground (focus_region), or,
    when that is almost nothing, where the pose network finds a small person (see the module doc).
    `infer`, the first pass's network, settles one disagreement (window_confirmed). `whole`: the
    request's look at the whole photo, if taken."""
    h, w = image.shape[:2]
    region = focus_region(probs, box, w, h)
    if pose is not None and foreground_share(probs, box) < keypoints.SMALL_SHARE:
        first = await whole.get() if whole is not None else None
        looks = await keypoints.person_looks(image, infer=pose, cpu=cpu, stage=stage, first=first)
        found = keypoints.located(looks, w, h)
        if found is None and infer is not None and looks and looks[0][1] is None:
            found = await window_confirmed(image, looks, infer=infer, cpu=cpu, stage=stage)
        region = found or region
    return region


async def window_confirmed(image: np.ndarray, looks: list, *, infer: Infer, cpu: Cpu, stage: Stage) -> Region | None:
    """The pose network's look at the whole photo says "a large person" while the first pass sees almost
    no one: the surest window's small person is taken if the segmentation network, looking at that
    crop, finds someone there (at least SMALL_SHARE of it) whom the crop does not cut through (a large
    person's window cuts the body as wide as it is: WINDOW_CUT; docs/models/segmentation.md, "A window
    the network confirms")."""
    h, w = image.shape[:2]
    region = next((r for _, r in looks if r is not None and keypoints.is_small(r, w, h)), None)
    if region is None:
        return None
    with stage("preprocess"):
        crop, crop_box = await cpu(focus_input, image, region)
    with stage("infer"):
        crop_probs = await infer(crop)
    seen = foreground_share(crop_probs, crop_box) >= keypoints.SMALL_SHARE
    return region if seen and not touches_edge(crop_probs, crop_box, share=WINDOW_CUT, background_at_most=0.5) else None


def focus_by_specialist(probs: np.ndarray, infer_crops: Infer | None) -> bool:
    """Whether the crop specialist, not the first network, leads the focus pass's look: for the fashion
    parsing (the crop is a person filling the frame, what the specialist was trained on: square +0.006,
    small +0.046 fashion mIoU), not for the person mask, where alone it spills onto a small person's
    surroundings (small 0.853 → 0.837 person mIoU; docs/models/segmentation.md). The person mask takes
    it as a second opinion instead (focus_look)."""
    return infer_crops is not None and len(probs) > 2


async def focus_look(
    crop: np.ndarray, probs: np.ndarray, *, infer: Infer, infer_crops: Infer | None
) -> tuple[np.ndarray, np.ndarray]:
    """The focus pass's probabilities on its crop (probs: the first pass's, which say the task), and the
    leading network's own: the parsing's from the specialist; the person mask's from the general network
    with the specialist's second opinion, both asked at once."""
    if focus_by_specialist(probs, infer_crops):
        special = await infer_crops(crop)
        return special, special
    if infer_crops is None:
        general = await infer(crop)
        return general, general
    general, special = await asyncio.gather(infer(crop), infer_crops(crop))
    return second_opinion(general, special), general


def photo_probs(
    probs: np.ndarray,
    box: Box,
    size: tuple[int, int],
    photo_size: tuple[int, int],
    focus: tuple[Region, np.ndarray, Box] | None = None,
) -> np.ndarray:
    """Canvas probabilities → C×H×W over the photo at size=(W, H) (the working size, or the quality
    features' smaller one), the focus pass's (see labels_from_probs) pasted into its region. A person
    the first pass hardly saw (under SMALL_SHARE of the photo) is the focus crop's alone: what the
    first pass called foreground outside it is the busy background it took for the person."""
    (ww, wh), (w, h) = size, photo_size
    # the services' networks answer float32 already (networks.infer_with); the evaluations' float16
    out = unletterbox(probs.astype(np.float32, copy=False), box, ww, wh)
    if focus is not None:
        region, crop_probs, crop_box = focus
        sx, sy = ww / w, wh / h
        x0, y0, x1, y1 = round(region.x0 * sx), round(region.y0 * sy), round(region.x1 * sx), round(region.y1 * sy)
        if foreground_share(probs, box) < keypoints.SMALL_SHARE:
            out[0], out[1:] = 1, 0  # the crop is pasted over this below
        if x1 > x0 and y1 > y0:
            out[:, y0:y1, x0:x1] = unletterbox(crop_probs.astype(np.float32, copy=False), crop_box, x1 - x0, y1 - y0)
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
    backdrop: bool = False,
) -> np.ndarray:
    """image HxWx3 uint8, probs CxHcxWc on the canvas → HxW uint8 class indices. `focus` = (region of
    the photo, the crop's canvas probabilities, the crop's box): they replace the first pass there.
    `backdrop`: the outline snapped to a plain backdrop's colour, where there is one (refine.snap_to_backdrop)."""
    h, w = image.shape[:2]
    ww, wh = work_size(w, h, MAX_WORK_PIXELS)
    work_image = image if (ww, wh) == (w, h) else cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA)
    if crf:
        # the CRF runs on a smaller copy (CrfParams.max_pixels): its probabilities come straight from the
        # canvas at that size, not enlarged to the working size first and shrunk again
        params = crf if isinstance(crf, CrfParams) else PERSON_CRF if len(probs) == 2 else CrfParams()
        cw, ch = work_size(w, h, params.max_pixels)
        crf_image = work_image if (cw, ch) == (ww, wh) else cv2.resize(image, (cw, ch), interpolation=cv2.INTER_AREA)
        marginals = dense_crf(crf_image, photo_probs(probs, box, (cw, ch), (w, h), focus), params)
        work_probs = np.stack([cv2.resize(m, (ww, wh), interpolation=cv2.INTER_LINEAR) for m in marginals])
    else:
        work_probs = photo_probs(probs, box, (ww, wh), (w, h), focus)
    # min_region is given in photo pixels; scale it to the working size.
    labels = refine(work_image, work_probs, round(min_region * ww * wh / (w * h)), superpixels)
    if backdrop:
        labels = snap_to_backdrop(work_image, labels)
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
    share = {"share": float(np.count_nonzero(labels) / labels.size)}  # the person's part of the photo
    if len(small) == 2:
        return "person", quality.mask_features(small[1], labels == 1) | share
    return "fashion", quality.parsing_features(small, labels) | share


async def segment(
    image: np.ndarray,
    *,
    crf: bool | CrfParams,
    min_region: int,
    superpixels: bool,
    infer: Infer,
    cpu: Cpu,
    stage: Stage,
    backdrop: bool = False,
    focus: bool = True,
    assess: quality.Assessment | None = None,
    infer_crops: Infer | None = None,
    pose: Infer | None = None,
    pose_ahead: bool = False,
    first: Infer | None = None,
) -> np.ndarray:
    """The whole segmentation of one photo → H×W uint8 labels. infer(canvas) → one task's C×h×w
    probabilities on the canvas; `first`, when given, asks the first pass instead, as (those
    probabilities, the routing head's `cut`) in one call (infer_with(network, SEGMENTATION, task,
    "cut")), so that the head spares the pose network where it is sure; infer_crops, the crop
    specialist's; pose, the pose network's heatmaps, which say whether the frame cuts the person and
    where a small one is (see the module doc); the specialist needs it. `focus`: a second pass on a
    small foreground. `assess`, when given, receives the result's quality features. `pose_ahead`: the pose network's look at the whole photo is asked at
    once, beside the first pass, instead of once the first pass says it is needed (the same result; a
    lone request's latency for a pose pass that may go unused)."""
    whole = keypoints.WholeLook(image, infer=pose, cpu=cpu, stage=stage, ahead=pose_ahead) if pose else None
    try:
        with stage("preprocess"):
            canvas, box = await cpu(prepare, image)
        with stage("infer"):
            probs, head = await first(canvas) if first is not None else (await infer(canvas), None)
        # the quality features read the leading network's own probabilities: the second opinion's mix is
        # less sure wherever the two disagree, which on a crop they do everywhere (docs/models/quality.md)
        judged = probs
        if (
            infer_crops is not None
            and pose is not None
            and await cut_by_frame(
                image,
                probs,
                box,
                pose=pose,
                cpu=cpu,
                stage=stage,
                whole=whole,
                head=None if head is None else float(head[0]),
            )
        ):
            with stage("infer"):
                judged = await infer_crops(canvas)
                probs = second_opinion(judged, probs)
        second = judged_second = None
        region = (
            await focus_target(image, probs, box, pose=pose, cpu=cpu, stage=stage, infer=infer, whole=whole)
            if focus
            else None
        )
        if region is not None:
            with stage("preprocess"):
                crop, crop_box = await cpu(focus_input, image, region)
            with stage("infer"):
                look, lead = await focus_look(crop, probs, infer=infer, infer_crops=infer_crops)
            second, judged_second = (region, look, crop_box), (region, lead, crop_box)
        with stage("postprocess"):
            labels = await cpu(
                lambda: labels_from_probs(
                    image,
                    probs,
                    box,
                    crf=crf,
                    min_region=min_region,
                    superpixels=superpixels,
                    focus=second,
                    backdrop=backdrop,
                )
            )
        if assess is not None:
            with stage("quality"):
                assess.add(*await cpu(quality_features, judged, box, labels, judged_second))
        return labels
    finally:
        if whole is not None:
            await whole.settle()
