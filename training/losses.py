"""Losses shared by the segmentation-type networks."""

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean soft Dice over the classes (softmax of `logits` against integer `target`)."""
    probs = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (total + 1)).mean()


def ssim(x: torch.Tensor, y: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Mean SSIM of two N×C×H×W images in [-1, 1], computed as scikit-image's `structural_similarity`
    does by default on [0, 1] (a win×win uniform window, sample covariance, valid windows only), so
    that a loss on it optimises the metric the model cards report."""
    x, y = (x + 1) / 2, (y + 1) / 2  # the luminance term is not shift-invariant
    c1, c2 = 0.01**2, 0.03**2
    channels = x.shape[1]
    kernel = torch.full((channels, 1, win, win), 1.0 / win**2, dtype=x.dtype, device=x.device)

    def mean(t):
        return F.conv2d(t, kernel, groups=channels)

    mx, my = mean(x), mean(y)
    norm = win**2 / (win**2 - 1)
    vx, vy, cxy = norm * (mean(x * x) - mx * mx), norm * (mean(y * y) - my * my), norm * (mean(x * y) - mx * my)
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()
