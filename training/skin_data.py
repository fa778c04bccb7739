"""The skin-generation dataset: (generator input, target) pairs made from ../shared/data.

    python -m training.dataset_pictures skin --pictures docs/models/img/skin_inputs.png   # builds it, draws examples

For every Fashionista and CCP photo with parsing labels and teacher keypoints: the body skin (skin
minus head and feet, fashionpixel/skin.py) is the region to regenerate; the input is the photo with
that region and the background white, the pose lines and the region mask; the target is the person
on white. Everything is built at full size and letterboxed into the generator's canvas.
"""

import cv2
import numpy as np

from fashionpixel.letterbox import letterbox
from fashionpixel.skin import CANVAS_H, CANVAS_W, SKIN_CLASS, WHITE, body_skin, network_input, person_on_white
from training.datasets import cached, keypoint_samples, read_image, read_labels


def example(image: np.ndarray, person: np.ndarray, fashion: np.ndarray, keypoints: np.ndarray):
    """(H×W×7 input, H×W×3 target) on the canvas for one labelled photo."""
    person = person.astype(bool)
    region = body_skin(fashion == SKIN_CLASS, person, keypoints)
    x, _ = network_input(image, person, region, keypoints)
    target, _ = letterbox(person_on_white(image, person), CANVAS_W, CANVAS_H, pad=WHITE)
    return x, target


def build(split: str) -> dict[str, np.ndarray]:
    """The cached inputs/targets of one split (both data sets), as uint8 arrays."""
    samples = [(s, k) for s, k in keypoint_samples() if s.split == split and labelled(s)]

    def make():
        pairs = [example(read_image(s), *read_labels(s), k) for s, k in samples]
        return {"inputs": np.stack([x for x, _ in pairs]), "targets": np.stack([y for _, y in pairs])}

    return cached(f"skin_{CANVAS_W}x{CANVAS_H}", [s for s, _ in samples], make)


def labelled(sample) -> bool:
    """Fashionista photos all have labels; CCP only the annotated range."""
    return sample.dataset == "fashionista" or (sample.image.parent.parent / "labels" / f"{sample.name}.png").exists()


def grid(rows: list[list[np.ndarray]], height: int = 192) -> np.ndarray:
    """Tiles (RGB or grey) in rows, each resized to `height`, as one RGB picture."""
    out = []
    for row in rows:
        tiles = [np.repeat(t[..., None], 3, 2) if t.ndim == 2 else t for t in row]
        tiles = [
            cv2.resize(t, (t.shape[1] * height // t.shape[0], height), interpolation=cv2.INTER_AREA) for t in tiles
        ]
        out.append(np.hstack(tiles))
    return np.vstack(out)
