"""Shop framings of a labelled photo: how product pages frame people, made from street photos.

`frame(name, ...)` is the evaluation's deterministic framing of one photo; `random_frame(rng, ...)` is
training's random one. Both move the photo, its label maps (nearest neighbour) and its keypoints with
one affine map, so labels stay aligned whatever the crop, zoom or padding.

Framings (issue 20):
- full      the photo as it is
- waist-up  from just above the head to just below the hips, enlarged back to the photo's size
- knee-up   from just above the head to just below the knees, enlarged back to the photo's size
- no-head   the photo cropped at the chin (the rows above it removed)
- studio    the labelled person pasted on plain grey or white
- square    padded to 1:1 with white
- small     the person at 30 % of the frame height on a wider (4:3) canvas made from another photo's
            background (the strips beside its person, side by side)
`shop` is the mean over every framing but `full`.
"""

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

FRAMINGS = ("full", "waist-up", "knee-up", "no-head", "studio", "square", "small")
SHOP = FRAMINGS[1:]
WHITE, STUDIO_GREY = 255, 200
SMALL_HEIGHT = 0.3  # the small person's height as a share of the frame's
SHOP_CACHE = (400, 600)  # W×H of the photos the training framings crop from (Fashionista's own size)
VALIDATION_FRAMINGS = ("full", "waist-up", "square", "small")  # what the training commands validate on
# a crop specialist (`--augment crops`): the framings that cut the person, and the training modes making them
CROP_FRAMINGS = ("waist-up", "knee-up", "no-head")
CROP_MODES = ("zoom", "pad")
# the trainers' framed augmentations: name → (random_frame's fill modes, None = all; the framings validated)
FRAMED = {"shop": (None, VALIDATION_FRAMINGS), "crops": (CROP_MODES, CROP_FRAMINGS)}


@dataclass(frozen=True)
class Anchors:
    """Where the person is, in photo pixels: rows of the head top, chin, hips, knees and feet, and its columns."""

    top: float
    chin: float
    hips: float
    knees: float
    bottom: float
    left: float
    right: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def centre(self) -> float:
        return (self.left + self.right) / 2


def anchors(person: np.ndarray, keypoints: np.ndarray | None = None) -> Anchors:
    """The person's anchors from its 0/1 mask, refined by its 18 keypoints (x, y; -1 = missing) where
    they are known; missing keypoints fall back to body proportions of the mask's box."""
    ys, xs = np.nonzero(person)
    if len(ys) == 0:
        h, w = person.shape
        return Anchors(0, 0.12 * h, 0.5 * h, 0.72 * h, h - 1, 0, w - 1)
    top, bottom = float(ys.min()), float(ys.max())
    height = max(bottom - top, 1.0)

    def row(indices: tuple[int, ...], share: float) -> float:
        known = [keypoints[i, 1] for i in indices if keypoints is not None and keypoints[i, 1] >= 0]
        return float(np.mean(known)) if known else top + share * height

    nose, neck = row((0,), 0.07), row((1,), 0.17)
    chin = nose + 0.55 * (neck - nose)  # the chin sits a little over halfway from the nose to the shoulders
    hips = row((8, 11), 0.5)
    knees = max(row((9, 12), 0.72), hips + 1)
    return Anchors(top, chin, hips, knees, bottom, float(xs.min()), float(xs.max()))


def affine(scale: float, x0: float, y0: float) -> np.ndarray:
    """The map photo → framed picture: photo point (x0, y0) lands at (0, 0), then scaled."""
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)


def warp(
    image: np.ndarray,
    labels: dict[str, np.ndarray],
    keypoints: np.ndarray | None,
    m: np.ndarray,
    size: tuple[int, int],
    fill,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    """Photo, label maps and keypoints through the 2x3 map `m` into a size=(W, H) picture; what falls
    outside the photo is `fill` in the image and 0 (background) in the labels; keypoints that leave
    the picture become -1."""
    w, h = size
    interp = cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR
    fill = (fill,) * 3 if np.isscalar(fill) else tuple(int(c) for c in fill)
    out = cv2.warpAffine(image, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    maps = {
        k: cv2.warpAffine(v, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        for k, v in labels.items()
    }
    points = None
    if keypoints is not None:
        points = np.full_like(keypoints, -1, dtype=np.float32)
        ok = (keypoints[:, 0] >= 0) & (keypoints[:, 1] >= 0)
        moved = keypoints[:, :2] @ m[:, :2].T + m[:, 2]
        inside = ok & (moved[:, 0] >= 0) & (moved[:, 0] <= w - 1) & (moved[:, 1] >= 0) & (moved[:, 1] <= h - 1)
        points[inside] = moved[inside]
    return out, maps, points


def soft_alpha(person: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """The 0/1 person mask as a soft HxWx1 alpha (a feathered edge, no hard paste seam)."""
    a = person.astype(np.float32)
    if sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), sigma)
    return a[..., None]


def composite(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    return (image * alpha + background * (1 - alpha) + 0.5).astype(np.uint8)


def backdrop(photo: np.ndarray, person: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A wider scene at size=(W, H) from another photo's background alone: the columns left and right
    of its person (with a margin), mirrored and repeated side by side until wide enough, lightly
    blurred. (Inpainting the person away left a person-shaped smudge that detectors still see.)"""
    h, w = photo.shape[:2]
    cols = np.nonzero(person.any(0))[0]
    margin = w // 20
    strips = [photo[:, : max(cols.min() - margin, 0)], photo[:, cols.max() + 1 + margin :]] if len(cols) else [photo]
    strips = [s for s in strips if s.shape[1] >= 8] or [photo[:, : max(w // 10, 8)]]
    tiles, width, k = [], 0, 0
    target_w = round(size[0] * h / size[1])
    while width < target_w:  # alternate plain and mirrored strips so the seams meet like edges
        strip = strips[k % len(strips)]
        tiles.append(strip if (k // len(strips)) % 2 == 0 else strip[:, ::-1])
        width += strip.shape[1]
        k += 1
    scene = np.hstack(tiles)[:, :target_w]
    return cv2.GaussianBlur(cv2.resize(scene, size, interpolation=cv2.INTER_AREA), (0, 0), 1.5)


def _pick(name: str, salt: str, n: int) -> int:
    return int(hashlib.md5(f"{salt}/{name}".encode()).hexdigest(), 16) % n


def crop_box(a: Anchors, y0: float, y1: float, aspect: float, width: int, height: int) -> tuple[float, float, float]:
    """(x0, y0, crop height) of a crop from row y0 to y1 with width/height `aspect`, centred on the
    person and kept inside the photo where it fits."""
    y0 = max(0.0, y0)
    y1 = min(float(height), max(y1, y0 + 1))
    ch = y1 - y0
    cw = ch * aspect
    x0 = a.centre - cw / 2
    x0 = min(max(x0, 0.0), max(width - cw, 0.0)) if cw <= width else (width - cw) / 2
    return x0, y0, ch


def frame(
    name: str,
    image: np.ndarray,
    labels: dict[str, np.ndarray],
    keypoints: np.ndarray | None,
    person_key: str = "person",
    key: str = "",
    other: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    """The framing `name` of one photo (deterministic: `key`, e.g. the file name, picks the studio
    colour and the small person's place). `labels[person_key]` is the person mask the crops and
    pastes use; `other` = (photo, person mask) of another photo, the small framing's background."""
    h, w = image.shape[:2]
    if name == "full":
        return image, labels, keypoints
    person = labels[person_key] > 0
    a = anchors(person, keypoints)
    if name in ("waist-up", "knee-up"):
        below = a.hips + 0.15 * (a.hips - a.chin) if name == "waist-up" else a.knees + 0.1 * (a.knees - a.hips)
        x0, y0, ch = crop_box(a, a.top - 0.04 * a.height, below, w / h, w, h)
        return warp(image, labels, keypoints, affine(h / ch, x0, y0), (w, h), WHITE)
    if name == "no-head":
        y0 = int(round(a.chin))
        return warp(image, labels, keypoints, affine(1.0, 0, y0), (w, h - y0), WHITE)
    if name == "studio":
        colour = (WHITE, STUDIO_GREY)[_pick(key, "studio", 2)]
        return composite(image, soft_alpha(person), np.float32(colour)), labels, keypoints
    if name == "square":
        side = max(w, h)
        return warp(image, labels, keypoints, affine(1.0, -(side - w) / 2, -(side - h) / 2), (side, side), WHITE)
    if name == "small":
        cw, chh = round(h * 4 / 3), h
        s = min(1.0, SMALL_HEIGHT * chh / max(a.height, 1))
        # the feet stand between 75 and 90 % of the height, somewhere across the frame
        feet = chh * (0.75 + 0.15 * _pick(key, "feet", 100) / 100)
        left = (cw - s * (a.right - a.left)) * _pick(key, "left", 100) / 100
        m = affine(s, a.left - left / s, a.bottom - feet / s)
        out, maps, points = warp(image, labels, keypoints, m, (cw, chh), 0)
        scene = backdrop(*other, (cw, chh)) if other is not None else np.full((chh, cw, 3), STUDIO_GREY, np.uint8)
        return composite(out, soft_alpha(maps[person_key] > 0, 0.7), scene.astype(np.float32)), maps, points
    raise ValueError(f"unknown framing {name!r}; known: {', '.join(FRAMINGS)}")


def shop_mean(per_framing: dict[str, float]) -> float | None:
    """The mean of a metric over the shop framings that were measured (None if none was)."""
    values = [v for k, v in per_framing.items() if k in SHOP and v is not None]
    return float(np.mean(values)) if values else None


# --- training: random framings -------------------------------------------------------------------


def random_backdrop(rng: np.random.Generator, size: tuple[int, int], others: np.ndarray | None) -> np.ndarray:
    """A background for a pasted person: plain (white, grey or a random tint), a vertical gradient, or
    another photo of `others` (N×H×W×3) blurred, as studio walls and out-of-focus scenes look."""
    w, h = size
    kind = rng.random()
    if kind < 0.35:
        colour = rng.choice([WHITE, STUDIO_GREY, 235]) if rng.random() < 0.6 else rng.integers(60, 256)
        tint = np.clip(colour + rng.integers(-12, 13, 3), 0, 255)
        return np.broadcast_to(tint.astype(np.float32), (h, w, 3)).copy()
    if kind < 0.6 or others is None:
        a, b = rng.integers(40, 256, 3), rng.integers(40, 256, 3)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.float32)
    photo = others[rng.integers(len(others))]
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    return cv2.GaussianBlur(cv2.resize(photo, (w, h)), (0, 0), rng.uniform(2, 12)).astype(np.float32)


ASPECTS = (2 / 3, 3 / 4, 4 / 5, 1.0, 2 / 3, 3 / 4)  # width/height of product photos; portrait ones twice


def random_frame(
    rng: np.random.Generator,
    image: np.ndarray,
    labels: dict[str, np.ndarray],
    keypoints: np.ndarray | None,
    size: tuple[int, int],
    person_key: str = "person",
    others: np.ndarray | None = None,
    fill_modes=("full", "scene", "zoom", "small", "pad"),
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    """One random training framing of a photo, as a picture that fits size=(W, H) (the network canvas;
    the caller letterboxes it like the service does). Modes:
    - full: the photo as it is, scale 0.85-1.15 and a small shift, its own background (the street
      photos the networks were first trained on, so that they keep what they knew);
    - scene: the whole photo at a random scale 0.5-2.0 (DeepLab's range), randomly cropped or padded;
    - zoom: a person-anchored crop from above the head or the chin down to anywhere between the hips
      and the feet, at a product photo's aspect ratio, edges beyond the photo filled plain;
    - small: the person at 15-45 % of the frame's height on a backdrop;
    - pad: the photo or a zoom padded out to another aspect ratio with white or grey.
    Then, half the time (not in full), the background is replaced (plain, gradient or a blurred photo)
    through a feathered person mask."""
    h, w = image.shape[:2]
    cw, ch = size
    person = labels[person_key] > 0
    a = anchors(person, keypoints)
    mode = rng.choice(fill_modes, p=_mode_p(fill_modes))
    fill = int(rng.choice([WHITE, STUDIO_GREY, 127, 235]))
    aspect = float(rng.choice(ASPECTS))
    if mode == "small":
        aspect = float(rng.uniform(2 / 3, 16 / 9))
    if mode == "full":
        aspect = w / h
    pw, ph = _fit(aspect, cw, ch)
    if mode == "full":
        s = rng.uniform(0.85, 1.15) * min(pw / w, ph / h)
        m = affine(s, (w - pw / s) / 2 + rng.uniform(-0.05, 0.05) * w, (h - ph / s) / 2 + rng.uniform(-0.05, 0.05) * h)
    elif mode == "scene":
        s = rng.uniform(0.5, 2.0) * min(pw / w, ph / h)
        x0 = rng.uniform(min(0, w - pw / s), max(0, w - pw / s))
        y0 = rng.uniform(min(0, h - ph / s), max(0, h - ph / s))
        m = affine(s, x0, y0)
    elif mode in ("zoom", "pad"):
        top = (
            a.chin - rng.uniform(0, 0.04) * a.height if rng.random() < 0.25 else a.top - rng.uniform(0, 0.15) * a.height
        )
        bottom = rng.uniform(a.hips + 0.05 * a.height, a.bottom + 0.1 * a.height)
        if mode == "pad":  # the crop (or the whole photo) padded out to the picture's aspect
            top, bottom = (top, bottom) if rng.random() < 0.5 else (0, h)
            crop_h = bottom - max(top, 0)
            s = ph / crop_h * rng.uniform(0.8, 1.0)
            x0 = a.centre - pw / s / 2
            y0 = max(top, 0) - (ph / s - crop_h) / 2
        else:
            crop_h = (bottom - top) * rng.uniform(0.95, 1.1)
            s = ph / crop_h
            x0 = a.centre + rng.uniform(-0.1, 0.1) * a.height - pw / s / 2
            y0 = top
        m = affine(s, x0, y0)
    else:  # small
        s = rng.uniform(0.15, 0.45) * ph / max(a.height, 1)
        left = rng.uniform(0, max(pw - s * (a.right - a.left), 1))
        feet = rng.uniform(0.6, 0.95) * ph
        m = affine(s, a.left - left / s, a.bottom - feet / s)
    if rng.random() < 0.5:  # mirror (no class here is left/right specific; keypoints swap sides)
        m = np.array([[-1, 0, pw - 1], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    out, maps, points = warp(image, labels, keypoints, m, (pw, ph), fill)
    if points is not None and m[0, 0] < 0:
        from fashionpixel.pose import FLIP_INDEX

        points = points[FLIP_INDEX]
    if mode == "small" or (mode != "full" and rng.random() < 0.5):
        alpha = soft_alpha(maps[person_key] > 0, rng.uniform(0.3, 2.0))
        out = composite(out, alpha, random_backdrop(rng, (pw, ph), others))
    return out, maps, points


def _mode_p(modes) -> list[float]:
    # a third plain full photos, so the networks stay as good on street photos as they were
    weights = {"full": 0.33, "scene": 0.2, "zoom": 0.25, "small": 0.1, "pad": 0.12}
    p = np.array([weights[m] for m in modes])
    return list(p / p.sum())


def _fit(aspect: float, width: int, height: int) -> tuple[int, int]:
    """The largest picture of width/height `aspect` inside width×height."""
    if aspect >= width / height:
        return width, max(1, round(width / aspect))
    return max(1, round(height * aspect)), height


def framed_sets(
    data: dict[str, np.ndarray],
    framings: tuple[str, ...],
    canvas: tuple[int, int],
    label_keys: tuple[str, ...],
    person_key: str = "person",
) -> dict[str, dict[str, np.ndarray]]:
    """A cached set (images, label maps, keypoints) in each framing, letterboxed into canvas=(W, H):
    the training commands' validation sets (keypoints in canvas pixels, -1 = out of the frame).
    The small framing's backdrop is the next photo's."""
    from fashionpixel.letterbox import letterbox, letterbox_labels, points_to_canvas

    keys = tuple(dict.fromkeys((*label_keys, person_key)))
    n = len(data["images"])
    out = {}
    for name in framings:
        images, maps, points = [], {k: [] for k in label_keys}, []
        for i in range(n):
            j = (i + 1) % n
            picture, labels, moved = frame(
                name,
                data["images"][i],
                {k: data[k][i] for k in keys},
                data["keypoints"][i] if "keypoints" in data else None,
                person_key,
                key=str(i),
                other=(data["images"][j], data[person_key][j]),
            )
            fitted, box = letterbox(picture, *canvas)
            images.append(fitted)
            for k in label_keys:
                maps[k].append(letterbox_labels(labels[k], *canvas))
            if moved is not None:
                points.append(points_to_canvas(moved, box, picture.shape[1]))
        out[name] = {"images": np.stack(images)} | {k: np.stack(v) for k, v in maps.items()}
        if points:
            out[name]["keypoints"] = np.stack(points)
    return out


def framed_scores(
    val_sets: dict[str, dict[str, np.ndarray]],
    score: Callable[[dict[str, np.ndarray]], dict[str, float]],
    averaged: tuple[str, ...],
    name: str,
) -> dict[str, float]:
    """A training command's validation: `score` of each set of `framed_sets`, its keys suffixed with
    `_<framing>` (none for full); with several framings, `name` is the mean of the scores whose keys
    start with one of `averaged` (the score that picks the best checkpoint)."""
    scores = {}
    for framing, data in val_sets.items():
        suffix = "" if framing == "full" else f"_{framing}"
        scores |= {f"{k}{suffix}": v for k, v in score(data).items()}
    if len(val_sets) > 1:
        scores[name] = float(np.mean([v for k, v in scores.items() if k.startswith(averaged)]))
    return scores


# --- evaluation: every command's --framing ----------------------------------------------------------


def add_framing_argument(ap) -> None:
    """The evaluation commands' `--framing`: one or more framings, or `all` (every framing + the shop mean)."""
    ap.add_argument(
        "--framing",
        nargs="+",
        default=["full"],
        choices=[*FRAMINGS, "all"],
        help="score the photos in these framings (training/framing.py); all = every framing, "
        "and the report adds `shop`, the mean over the shop framings",
    )


def add_split_argument(ap) -> None:
    """The evaluation commands' `--split`: the validation photos, or the training photos to see whether
    a network underfits (scores its training photos like unseen ones)."""
    ap.add_argument(
        "--split",
        choices=["val", "train"],
        default="val",
        help="train: the photos the network learned from (is it underfitting?)",
    )


def chosen_framings(names: list[str]) -> tuple[str, ...]:
    return FRAMINGS if "all" in names else tuple(dict.fromkeys(names))


def framed_photos(framing: str, samples: list, read: Callable[[object], dict[str, np.ndarray]]) -> Iterator[tuple]:
    """(sample, photo, label maps, keypoints) of each sample in `framing`. `read(sample)` gives its label
    maps, with its 0/1 `person` mask among them; the photo and teacher keypoints are read here. The
    small framing's backdrop is the next sample's photo without its person."""
    from training.datasets import read_image, sample_keypoints

    for i, s in enumerate(samples):
        other = None
        if framing == "small":
            o = samples[(i + 1) % len(samples)]
            other = (read_image(o), read(o)["person"])
        yield (s, *frame(framing, read_image(s), read(s), sample_keypoints(s), key=s.name, other=other))
