"""The skin-generation inputs and output, shared by the dataset builder, the service and the evaluation.

From a photo, its parsing and its pose (all at one size):
- body skin = the skin to regenerate: every skin pixel except the head (above the neck keypoint) and
  the feet (below the ankles), which stay as they are, as in the reference study;
- apparel_head_foot = the photo with the body skin and the background painted white;
- the pose as OpenPose-style lines; the skin mask (255 = generate here);
- target = the person on white.
The generator sees them letterboxed (white padding) into CANVAS_W×CANVAS_H; its output is pasted
back into the photo inside the skin region only, so nothing else of the photo changes.
"""

import cv2
import numpy as np

from fashionpixel import quality
from fashionpixel.labels import FASHION_CLASSES
from fashionpixel.letterbox import Box, letterbox, points_to_canvas
from fashionpixel.models import SKIN, SKIN_CHANNELS
from fashionpixel.networks import Network
from fashionpixel.pose import draw_pose, found
from fashionpixel.reading import read_person
from fashionpixel.stages import Cpu, Infer, Stage

CANVAS_W, CANVAS_H = SKIN.canvas
WHITE = 255
CHANNELS = SKIN_CHANNELS  # apparel_head_foot RGB + pose RGB + skin mask
SKIN_CLASS = FASHION_CLASSES.index("skin")
HEAD_FRACTION, FEET_FRACTION = 0.18, 0.06  # of the person's height, when the neck / ankles are not found


def body_skin(skin: np.ndarray, person: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The skin to regenerate (bool H×W): skin below the neck and above the lower ankle."""
    rows = np.nonzero(person.any(1))[0]
    if len(rows) == 0 or not skin.any():
        return np.zeros(skin.shape, bool)
    top, bottom = rows[0], rows[-1]
    k, ok = np.asarray(keypoints, np.float32), found(keypoints)
    if ok[1]:
        neck = k[1, 1]
    elif ok[2] or ok[5]:
        neck = k[[i for i in (2, 5) if ok[i]], 1].mean()
    else:
        neck = top + HEAD_FRACTION * (bottom - top)
    ankles = [k[i, 1] for i in (10, 13) if ok[i]]
    feet = max(ankles) if ankles else bottom - FEET_FRACTION * (bottom - top)
    y = np.arange(skin.shape[0])[:, None]
    return skin & person & (y >= neck) & (y <= feet)


def apparel_head_foot(image: np.ndarray, person: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The photo with the skin region and the background painted white."""
    return np.where((person & ~region)[..., None], image, np.uint8(WHITE))


def person_on_white(image: np.ndarray, person: np.ndarray) -> np.ndarray:
    return np.where(person[..., None], image, np.uint8(WHITE))


def network_input(
    image: np.ndarray, person: np.ndarray, region: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, Box]:
    """H×W×7 uint8 generator input on the canvas (apparel_head_foot, pose lines, mask) and the box."""
    ahf, box = letterbox(apparel_head_foot(image, person, region), CANVAS_W, CANVAS_H, pad=WHITE)
    mask, _ = letterbox(np.repeat(region.astype(np.uint8)[..., None] * 255, 3, 2), CANVAS_W, CANVAS_H, pad=0)
    k = np.asarray(keypoints, np.float32).copy()
    k[~found(k), :2] = -1
    pose = draw_pose(points_to_canvas(k, box, image.shape[1])[:, :2], CANVAS_W, CANVAS_H, thickness=2)
    # any coverage counts: the canvas mask must cover every photo pixel that will be pasted
    return np.dstack([ahf, pose, (mask[..., :1] > 0).astype(np.uint8) * 255]), box


def paste(image: np.ndarray, generated: np.ndarray, box: Box, region: np.ndarray, person: np.ndarray) -> np.ndarray:
    """H×W×4 RGBA: the photo with `generated` (canvas RGB) inside `region`, alpha = the person."""
    h, w = image.shape[:2]
    crop = generated[box.y : box.y + box.h, box.x : box.x + box.w]
    up = cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)
    rgb = np.where(region[..., None], up, image)
    return np.dstack([rgb, (person | region).astype(np.uint8) * 255])


async def regenerate(
    image: np.ndarray,
    *,
    keypoints: np.ndarray | None,
    region: np.ndarray | None,
    network: Network,
    generate: Infer,
    cpu: Cpu,
    stage: Stage,
    assess: quality.Assessment | None = None,
) -> np.ndarray:
    """The whole skin generation of one photo → H×W×4 RGBA (person with regenerated skin, alpha = person).

    `network` answers the segmentation and pose models (fashionpixel.reading: the person, the skin
    parsing and the keypoints as /v1/segment and /v1/pose read them); generate(x) → RGB on the skin
    canvas. `keypoints` (18×2 or 18×3, -1 = missing) and `region` (bool H×W) replace what would be
    derived. `assess`, when given, receives the quality features of what it derived: the person, the
    parsing (when it gives the region) and the pose (when it was estimated)."""
    # the silhouette is the output's alpha: refined as /v1/segment refines it (CRF, plain backdrops)
    read = await read_person(
        image,
        network=network,
        cpu=cpu,
        stage=stage,
        refine_person=True,
        parsing=region is None,
        pose=keypoints is None,
        assess=assess,
    )
    keypoints = read.keypoints if keypoints is None else keypoints

    def inputs():  # whole-photo array work: off the event loop
        skin_region = body_skin(read.fashion == SKIN_CLASS, read.person, keypoints) if region is None else region
        return skin_region, *network_input(image, read.person | skin_region, skin_region, keypoints)

    with stage("postprocess"):
        region, x, box = await cpu(inputs)
    with stage("infer"):
        generated = await generate(x)
    with stage("postprocess"):
        return await cpu(paste, image, generated, box, region, read.person)
