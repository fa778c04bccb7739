"""Losses of the training commands."""

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


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]


def texture_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, window: int = 8) -> torch.Tensor:
    """Mean |E(x) − E(y)| inside `mask` (N×1×H×W, 0/1; windows wholly inside it), where E is the local
    texture energy: the absolute Laplacian of the grey image averaged over window×window. It asks for
    as much fine detail as the target has nearby, not at the same pixel: an L1 between the gradients
    themselves prefers a blur to a texture shifted by a pixel or two (measured on the served generator's
    mirror pairs: 0.147 for its output against 0.189 for the warp pasted over it), and our warps are
    never aligned to the pixel. A flat fill pays for all of the target's texture energy here."""

    def energy(t):
        lap = F.conv2d(t.mean(1, keepdim=True), LAPLACIAN.to(t), padding=1).abs()
        return F.avg_pool2d(lap, window, 1, window // 2)

    inside = (F.avg_pool2d(mask, window, 1, window // 2) > 0.99).float()
    return ((energy(x) - energy(y)).abs() * inside).sum() / inside.sum().clamp(min=1)


def detail(t: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """What a Gaussian blur of `sigma` px removes from N×C×H×W `t` (its high frequencies, per channel)."""
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=t.dtype, device=t.device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    c = t.shape[1]
    padded = F.pad(t, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(
        F.conv2d(padded, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c),
        g.view(1, 1, -1, 1).expand(c, 1, -1, 1),
        groups=c,
    )
    return t - blurred


def detail_anchor_loss(heads, reference) -> torch.Tensor:
    """How far a pose-transfer generator's paint detail and copy gate moved from a frozen reference's on
    the same inputs; `heads` and `reference` are (painted RGB, alpha logits, gate) as the generator's
    `heads` gives them. The paint's detail (`detail`) is compared where the reference's composition shows
    the paint (its alpha × (1 − its gate)), the gate everywhere. The paint's low frequencies, its colour,
    stay free: issue 25's colour loss may move them without buying a sharper paint, which the
    mirror-pose score pays for (docs/models/pose-transfer.md)."""
    painted, _, gate = heads
    ref_painted, ref_alpha, ref_gate = reference
    shown = torch.sigmoid(ref_alpha) * (1 - ref_gate)
    paint = ((detail(painted) - detail(ref_painted)).abs() * shown).sum() / (3 * shown.sum()).clamp(min=1)
    return paint + (gate - ref_gate).abs().mean()


def part_colour_loss(
    result: torch.Tensor,
    source: torch.Tensor,
    source_parts: torch.Tensor,
    carried: torch.Tensor,
    classes,
    min_pixels=20,
) -> torch.Tensor:
    """For pairs with no true image (a person in another person's pose): the L1 distance between each
    class's mean colour on the result, over the pixels the warp carried from that class (`carried`,
    N×H×W int), and its mean colour on the source (`source_parts`, N×H×W int); images N×3×H×W in
    [-1, 1]. Averaged over the (photo, class) pairs with at least `min_pixels` on both sides. A mean,
    not a pixel-wise target: the result may paint or copy as it likes, as long as a white shirt stays
    white (issue 25's colour fidelity), and texture is left free."""
    total, count = result.new_zeros(()), 0
    for c in classes:
        on_source, on_result = (source_parts == c).float()[:, None], (carried == c).float()[:, None]
        n_source, n_result = on_source.sum((2, 3)), on_result.sum((2, 3))
        valid = ((n_source >= min_pixels) & (n_result >= min_pixels)).float()[:, 0]
        goal = (source * on_source).sum((2, 3)) / n_source.clamp(min=1)
        mean = (result * on_result).sum((2, 3)) / n_result.clamp(min=1)
        total = total + ((mean - goal).abs().mean(1) * valid).sum()
        count += int(valid.sum())
    return total / max(count, 1)


def gate_loss(gate: torch.Tensor, warped: torch.Tensor, target: torch.Tensor, tolerance: float = 0.15) -> torch.Tensor:
    """Binary cross-entropy teaching a copy-or-paint gate (N×1×H×W in [0, 1]) where to copy: toward 1
    where the warp (N×4×H×W in [-1, 1], RGB and coverage) has a pixel whose colour is within `tolerance`
    of the target's (mean |Δ| over RGB, [-1, 1] units: 0.15 ≈ 19 grey levels), toward 0 where its pixel
    is wrong. Pixels the warp does not cover are not scored (the gate is 0 there by construction)."""
    covered = (warped[:, 3:4] > 0).float()
    agree = ((warped[:, :3] - target).abs().mean(1, keepdim=True) < tolerance).float()
    bce = F.binary_cross_entropy(gate.clamp(1e-4, 1 - 1e-4), agree, reduction="none")
    return (bce * covered).sum() / covered.sum().clamp(min=1)
