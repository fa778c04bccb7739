"""Geometric and photometric augmentation for image + label maps (label maps stay exact: nearest)."""

import cv2
import numpy as np

from fashionpixel.letterbox import PAD_VALUE, letterbox, letterbox_labels, points_to_canvas


def random_affine(
    rng: np.random.Generator, width: int, height: int, scale=(0.7, 1.3), rotate=10.0, shift=0.1, flip=True
) -> tuple[np.ndarray, bool]:
    """A 2×3 matrix (scale/rotate about the centre, shift) and whether to mirror."""
    s = rng.uniform(*scale)
    angle = rng.uniform(-rotate, rotate)
    m = cv2.getRotationMatrix2D((width / 2, height / 2), angle, s)
    m[0, 2] += rng.uniform(-shift, shift) * width
    m[1, 2] += rng.uniform(-shift, shift) * height
    mirror = bool(flip and rng.random() < 0.5)
    if mirror:  # mirror about the vertical centre line after the warp
        m = np.array([[-1, 0, width - 1], [0, 1, 0]], dtype=np.float64) @ np.vstack([m, [0, 0, 1]])
    return m, mirror


def warp_image(image: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.warpAffine(
        image, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3
    )


def warp_labels(labels: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.warpAffine(
        labels, m, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter, plus occasional blur and JPEG-like noise."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.7, 1.3)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - 128) * rng.uniform(0.75, 1.25) + 128 + rng.uniform(-25, 25)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.2:
        out += rng.normal(0, 4, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


# Geometric strength. "light" is for a last phase on a network that underfits (scores its training photos
# like unseen ones), where strong warps make training harder than the real task; measured +0.003 raw
# mIoU, absorbed by the CRF (docs/models/segmentation.md).
GEOMETRY = {
    "full": dict(scale=(0.7, 1.3), rotate=10.0, shift=0.1),
    "light": dict(scale=(0.9, 1.1), rotate=3.0, shift=0.03),
}


def augmented_batch(
    rng: np.random.Generator,
    data: dict[str, np.ndarray],
    batch: int,
    crop: tuple[int, int],
    label_keys: tuple[str, ...],
    scale: tuple[float, float] | None = None,
    geometry: str = "full",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`batch` random photos of `data` (images + label maps at one canvas size), warped, jittered and
    cropped to crop=(W, H): (N×H×W×3 uint8 images, one N×H×W label array per key). `scale`, when
    given, overrides the geometry's zoom range (the cutout trainer's zoom serves its second pass)."""
    warp = GEOMETRY[geometry] | ({"scale": scale} if scale else {})
    height, width = data["images"].shape[1:3]
    cw, ch = crop
    images, labels = [], {k: [] for k in label_keys}
    for i in rng.integers(0, len(data["images"]), batch):
        m, _ = random_affine(rng, width, height, **warp)
        # mirroring needs no label swap: no class here is left/right specific
        x0, y0 = rng.integers(0, width - cw + 1), rng.integers(0, height - ch + 1)
        images.append(photometric(rng, warp_image(data["images"][i], m, width, height))[y0 : y0 + ch, x0 : x0 + cw])
        for k in label_keys:
            labels[k].append(warp_labels(data[k][i], m, width, height)[y0 : y0 + ch, x0 : x0 + cw])
    return np.stack(images), [np.stack(labels[k]) for k in label_keys]


def framed_batch(
    rng: np.random.Generator,
    data: dict[str, np.ndarray],
    batch: int,
    canvas: tuple[int, int],
    label_keys: tuple[str, ...],
    person_key: str = "person",
    modes: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`batch` random photos of `data` (images, label maps, `person_key` mask and keypoints at one size,
    larger than the canvas so zooms stay sharp) in random shop framings (training.framing.random_frame),
    letterboxed into canvas=(W, H) exactly as the service letterboxes a photo, then colour-jittered.
    `label_keys` may name "keypoints": N×18×2 canvas pixels, -1 where a keypoint left the frame.
    `modes`: random_frame's fill modes (default all)."""
    from training.framing import random_frame

    extra = {"fill_modes": modes} if modes else {}
    images, labels = [], {k: [] for k in label_keys}
    keys = tuple(dict.fromkeys((*(k for k in label_keys if k != "keypoints"), person_key)))
    for i in rng.integers(0, len(data["images"]), batch):
        picture, maps, points = random_frame(
            rng,
            data["images"][i],
            {k: data[k][i] for k in keys},
            data["keypoints"][i] if "keypoints" in data else None,
            canvas,
            person_key,
            others=data["images"],
            **extra,
        )
        fitted, box = letterbox(picture, *canvas)
        images.append(photometric(rng, fitted))
        for k in label_keys:  # keypoints move with the photo into the canvas; label maps are letterboxed
            labels[k].append(
                points_to_canvas(points, box, picture.shape[1])
                if k == "keypoints"
                else letterbox_labels(maps[k], *canvas)
            )
    return np.stack(images), [np.stack(labels[k]) for k in label_keys]
