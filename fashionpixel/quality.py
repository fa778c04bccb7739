"""How far to trust a result (issue 22): a few cheap statistics of what a pipeline already holds (the
network's probabilities, the final mask or labels, the keypoint scores) and, per task, a linear model
over them that predicts this result's quality: person IoU, per-photo fashion mean IoU, garment Dice,
keypoint PCK@0.1. training/fit_quality.py fits the models on training photos in shop framings and
chooses each task's review threshold on validation photos; both live in quality_coefficients.json.

No extra network pass: the statistics cost a few milliseconds on a small copy of the maps."""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

COEFFICIENTS = Path(__file__).with_name("quality_coefficients.json")
TASKS = ("person", "fashion", "cutout", "pose")
PIXELS = 40_000  # the maps are shrunk to at most this many pixels before the statistics
# A person (or a parsing's foreground) on less of the photo than this is for review whatever its score: a
# figure that small (under 85 × 85 px in a 1600 × 900 landscape) is no product photo, and the score, which
# predicts IoU, may well find its mask fine. The smallest validation framing's person covers 0.96 % and
# more, so no validation result is flagged by this alone (docs/models/quality.md, "Review threshold").
TINY_PERSON = 0.005


def shrink(a: np.ndarray, pixels: int = PIXELS) -> np.ndarray:
    """An H×W float map at most `pixels` large (area filter: a mask becomes its coverage)."""
    h, w = a.shape
    scale = min(1.0, (pixels / (w * h)) ** 0.5)
    if scale == 1.0:
        return a.astype(np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def soft_iou(prob: np.ndarray, mask: np.ndarray) -> float:
    """The IoU the network itself expects of `mask` (its probabilities as the truth); 0 for an empty mask."""
    inter = float((prob * mask).sum())
    union = float(prob.sum() + mask.sum()) - inter
    return inter / union if mask.any() and union > 0 else 0.0


def _largest_share(mask: np.ndarray) -> float:
    """The share of a mask's pixels in its largest connected part (1 for one part; 0 for none)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return float(areas.max() / areas.sum()) if n > 1 else 0.0


def mask_features(prob: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """A binary result (the person, a garment): H×W foreground probability and the final mask (bool or
    alpha in [0, 1]) of the same size. An empty mask scores as badly as can be: nothing was found."""
    p, m = shrink(prob), shrink(mask.astype(np.float32)) >= 0.5
    edge = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
    return {
        "found": float(m.any()),  # lets a linear model treat "nothing found" apart from a poor mask
        "soft_iou": soft_iou(p, m),
        "confidence": float(p[m].mean()) if m.any() else 0.0,  # the mean probability inside the mask
        # how unsure the network is along the mask's outline (1 = a coin toss), where the errors are
        "edge_uncertainty": float((4 * p * (1 - p))[edge].mean()) if edge.any() else 1.0,
        "largest_part": _largest_share(m),
    }


def parsing_features(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """A parsing (fashion classes): C×H×W probabilities and the final H×W labels, of the same size.
    The classes scored are those of the labels or of the network's own argmax, as a photo's mean IoU
    scores the classes of its truth or its result."""
    p = np.stack([shrink(c) for c in probs])
    labels = cv2.resize(labels, p.shape[:0:-1], interpolation=cv2.INTER_NEAREST)
    raw = p.argmax(0)
    present = [c for c in range(len(p)) if (labels == c).any() or (raw == c).any()]
    foreground = labels > 0
    return {
        "soft_miou": float(np.mean([soft_iou(p[c], labels == c) for c in present])),
        "soft_iou_foreground": soft_iou(1 - p[0], foreground),
        "confidence": float(p.max(0)[foreground].mean()) if foreground.any() else 0.0,
    }


def pose_features(keypoints: np.ndarray) -> dict[str, float]:
    """18×3 keypoints (x, y, score; not found = score 0) as fashionpixel.keypoints finds them."""
    score = np.clip(np.asarray(keypoints, np.float32)[:, 2], 0, 1)
    found = score > 0
    return {"mean_score": float(score.mean()), "found_score": float(score[found].mean()) if found.any() else 0.0}


@dataclass(frozen=True)
class Model:
    """quality = bias + Σ weight × (feature − mean) / scale, clipped to [0, 1]."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # needs review below this (chosen on validation photos)

    def predict(self, values: dict[str, float]) -> float:
        x = (np.array([values[f] for f in self.features]) - self.mean) / self.scale
        return float(np.clip(self.bias + x @ np.array(self.weights), 0.0, 1.0))

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("features", "mean", "scale", "weights", "bias", "threshold")}


@lru_cache
def models(path: Path = COEFFICIENTS) -> dict[str, Model]:
    tasks = json.loads(path.read_text())["tasks"]
    return {
        task: Model(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.items()}) for task, m in tasks.items()
    }


@dataclass
class Assessment:
    """What a pipeline learns about its own result, part by part (its person mask, parsing, garment matte,
    keypoints): each part's task and features. A result built from several parts is as trustworthy as
    its weakest part."""

    parts: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)

    def add(self, task: str, features: dict[str, float], part: str | None = None) -> None:
        self.parts[part or task] = (task, features)

    def qualities(self) -> dict[str, float]:
        return {part: models()[task].predict(f) for part, (task, f) in self.parts.items()}

    def quality(self) -> float:
        return min(self.qualities().values())

    def needs_review(self, thresholds: dict[str, float] | None = None) -> bool:
        """Any part below its task's threshold (`thresholds` by task, "*": every task, or the validation's),
        or a person on less than TINY_PERSON of the photo (its `share`, where the part reports one)."""
        thresholds = thresholds or {}
        return any(
            q < thresholds.get(task, thresholds.get("*", models()[task].threshold))
            or features.get("share", 1.0) < TINY_PERSON
            for (task, features), q in zip(self.parts.values(), self.qualities().values())
        )
