"""Segmentation metrics: confusion matrix, per-class IoU, mean IoU, pixel accuracy, outline bands; PCK for keypoints."""
import cv2
import numpy as np

OUTLINE_PX = 2


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
