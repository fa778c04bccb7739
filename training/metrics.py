"""The evaluations' and trainers' metrics: confusion matrix, per-class IoU, mean IoU, pixel accuracy,
outline bands (segmentation); Dice and boundary F of garment mattes (cutout); PCK (keypoints); MSE,
PSNR and SSIM (generated images)."""

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from fashionpixel.labels import GARMENT_CLASSES

OUTLINE_PX = 2
BOUNDARY_TOLERANCE = 2  # px: a boundary pixel within this of the other mask's boundary is matched


def confusion(pred: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    idx = truth.astype(np.int64).ravel() * n + pred.astype(np.int64).ravel()
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def summarize(cm: np.ndarray, names: tuple[str, ...]) -> dict:
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return {
        "iou": {name: float(v) for name, v in zip(names, iou)},
        "mean_iou": float(np.nanmean(iou)),
        "pixel_accuracy": float(tp.sum() / max(cm.sum(), 1)),
    }


def near_outline(mask: np.ndarray, pixels: int = OUTLINE_PX) -> np.ndarray:
    """Pixels within `pixels` of the edge of a 0/1 mask (either side): where outline jitter lands."""
    edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return cv2.distanceTransform(1 - edge, cv2.DIST_L2, 3) < pixels


def pck(pred: np.ndarray, truth: np.ndarray, alpha: float = 0.1) -> dict:
    """PCK@alpha over N×18×2 keypoints (-1 = missing). A keypoint the teacher sees is correct when the
    prediction is within alpha × the larger side of the teacher's keypoint bounding box; a missing
    prediction (-1) is wrong. Returns per-keypoint and mean PCK."""
    visible = truth[..., 0] >= 0
    correct = np.zeros(visible.shape, bool)
    for n in range(len(truth)):
        v = visible[n]
        if v.sum() < 2:
            visible[n] = False
            continue
        box = truth[n, v].max(0) - truth[n, v].min(0)
        threshold = alpha * box.max()
        found = pred[n, :, 0] >= 0
        dist = np.linalg.norm(pred[n, :, :2] - truth[n], axis=1)
        correct[n] = v & found & (dist <= threshold)
    per = correct.sum(0) / np.maximum(visible.sum(0), 1)
    return {"per_keypoint": per.tolist(), "mean": float(correct.sum() / max(visible.sum(), 1))}


def image_metrics(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    """(MSE, PSNR dB, SSIM) of two uint8 RGB images, on [0, 1] intensities."""
    p, t = pred.astype(np.float64) / 255, true.astype(np.float64) / 255
    mse = float(((p - t) ** 2).mean())
    psnr = 10 * np.log10(1 / max(mse, 1e-10))
    return mse, psnr, float(structural_similarity(p, t, channel_axis=2, data_range=1.0))


def mean_image_metrics(rows: list[tuple[float, float, float]]) -> dict:
    """image_metrics of several photos averaged: {photos, mse, psnr, ssim}."""
    mse, psnr, ssim = np.mean(rows, axis=0)
    return {"photos": len(rows), "mse": float(mse), "psnr": float(psnr), "ssim": float(ssim)}


def mirror_pose_metrics(out: np.ndarray, photo: np.ndarray, person: np.ndarray, canvas_width: int):
    """Pose transfer's mirror-pose protocol (docs/models/pose-transfer.md): `out` renders the photo's
    person in the pose of the mirrored photo; its truth is the mirrored labelled person (0/1) on white.
    Returns image_metrics at full size and with both shrunk to `canvas_width` (the generator's own
    resolution, to separate resolution from rendering)."""
    truth = np.where(person[:, ::-1, None] > 0, photo[:, ::-1], np.uint8(255))
    size = (canvas_width, round(canvas_width * photo.shape[0] / photo.shape[1]))
    small = image_metrics(*(cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (out, truth)))
    return image_metrics(out, truth), small


def truth_mask(groups: np.ndarray, garment: str) -> np.ndarray:
    """A garment group's labelled pixels in a map of GARMENT_CLASSES indices (`all`: any garment)."""
    return groups > 0 if garment == "all" else groups == GARMENT_CLASSES.index(garment)


def boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def boundary_counts(pred: np.ndarray, true: np.ndarray) -> tuple[int, int, int, int]:
    """(matched predicted boundary px, predicted boundary px, matched true boundary px, true boundary px)."""
    bp, bt = boundary(pred), boundary(true)
    k = np.ones((2 * BOUNDARY_TOLERANCE + 1,) * 2, np.uint8)
    near_t = cv2.dilate(bt.astype(np.uint8), k).astype(bool)
    near_p = cv2.dilate(bp.astype(np.uint8), k).astype(bool)
    return int((bp & near_t).sum()), int(bp.sum()), int((bt & near_p).sum()), int(bt.sum())


class Tally:
    """Dice (pooled and per photo) and boundary F of binary masks, added one photo at a time."""

    def __init__(self):
        self.inter = self.total = 0
        self.per_photo: list[float] = []
        self.bf = np.zeros(4, np.int64)

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        inter, total = int((pred & true).sum()), int(pred.sum() + true.sum())
        self.inter += inter
        self.total += total
        if true.any():
            self.per_photo.append(2 * inter / total)
        self.bf += boundary_counts(pred, true)

    def summary(self) -> dict:
        precision = self.bf[0] / max(self.bf[1], 1)
        recall = self.bf[2] / max(self.bf[3], 1)
        return {
            "dice": 2 * self.inter / max(self.total, 1),
            "median_dice": float(np.median(self.per_photo)) if self.per_photo else None,
            "mean_dice": float(np.mean(self.per_photo)) if self.per_photo else None,
            "photos": len(self.per_photo),
            "boundary_f": float(2 * precision * recall / max(precision + recall, 1e-9)),
        }
