"""An ADGAN-style pose-transfer generator, small enough to train from scratch on a CPU.

ADGAN (Men et al., CVPR 2020) decomposes the source person into body parts, encodes each part into a
style code with a shared encoder, and decodes the target pose with residual blocks whose AdaIN
parameters come from the concatenated codes. Here:
- component encoder: one small CNN shared by the 8 parts (each part = the source masked to it, plus
  its mask), global-average-pooled to a 64-d code per part;
- pose encoder: the 18 target heatmaps together with the part-wise warped source (a spatial hint
  ADGAN does not have; see fashionpixel/pose_transfer.py), down to 1/4 resolution;
- decoder: AdaIN residual blocks modulated by the codes, then upsampling with skips from the pose
  encoder; out come RGB, a gate and an alpha. The gate chooses, per pixel, between the warped source
  (where the warp has pixels) and the painted RGB, like Deformable GAN's deformable skips; the alpha
  composites the person on white.
The discriminators are PatchGANs as in ADGAN: one judges the image against the target pose, one
against the source appearance.
"""

import torch
import torch.nn.functional as F
from torch import nn

from fashionpixel.pose_transfer import PARTS
from training.models.blocks import conv_bn
from training.models.skin import PatchDiscriminator


class AdaINBlock(nn.Module):
    """conv → instance norm → per-sample scale/shift from the style codes → ReLU, twice, residual."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.norm = nn.InstanceNorm2d(width, affine=False)
        self.params = 4 * width  # (γ, β) for each of the two convolutions

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = (s[..., None, None] for s in style.chunk(4, dim=1))
        h = torch.relu(self.norm(self.conv1(x)) * (1 + g1) + b1)
        h = self.norm(self.conv2(h)) * (1 + g2) + b2
        return x + h


class ComponentEncoder(nn.Module):
    """Each part of the source (image × mask, and the mask) → a style code; one CNN for all parts."""

    def __init__(self, code: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            conv_bn(4, 32, stride=2),
            conv_bn(32, 48, stride=2),
            conv_bn(48, 64, stride=2),
            conv_bn(64, code, stride=2),
            nn.AdaptiveAvgPool2d(1),
        )
        self.code = code

    def forward(self, source: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        """source N×3×H×W in [-1, 1], parts N×H×W int → N×(PARTS·code)."""
        n, _, h, w = source.shape
        # N×P×H×W; a comparison, not one_hot: an out-of-range index is simply no part
        masks = (parts[:, None] == torch.arange(PARTS, device=parts.device)[None, :, None, None]).float()
        x = torch.cat([source[:, None] * masks[:, :, None], masks[:, :, None]], 2)  # N×P×4×H×W
        x = F.avg_pool2d(x.reshape(n * PARTS, 4, h, w), 2)  # codes are global: half resolution is plenty
        return self.net(x).reshape(n, PARTS * self.code)


class PoseTransferGenerator(nn.Module):
    def __init__(self, widths: tuple[int, int, int] = (16, 48, 128), blocks: int = 4, code: int = 64):
        super().__init__()
        w1, w2, w3 = widths
        self.components = ComponentEncoder(code)
        self.enc1 = nn.Sequential(conv_bn(18 + 4, w1), conv_bn(w1, w1))
        self.enc2 = nn.Sequential(conv_bn(w1, w2, stride=2), conv_bn(w2, w2))
        self.enc3 = nn.Sequential(conv_bn(w2, w3, stride=2), conv_bn(w3, w3))
        self.blocks = nn.ModuleList(AdaINBlock(w3) for _ in range(blocks))
        self.style = nn.Sequential(
            nn.Linear(PARTS * code, 256), nn.ReLU(inplace=True), nn.Linear(256, sum(b.params for b in self.blocks))
        )
        self.dec2 = nn.Sequential(conv_bn(w3 + w2, w2), conv_bn(w2, w2))
        self.dec1 = nn.Sequential(conv_bn(w2 + w1, w1), conv_bn(w1, w1))
        self.out = nn.Conv2d(w1, 5, 3, 1, 1)  # RGB, alpha, gate
        with torch.no_grad():
            self.out.bias[4] = 1.0  # start by trusting the warp where it has pixels

    def heads(self, source, parts, pose, warped):
        """source N×3×H×W, pose N×18×H×W, warped N×4×H×W, all in [-1, 1]; parts N×H×W int → (painted
        RGB in [-1, 1], alpha logits N×1×H×W, gate N×1×H×W in [0, 1], 0 where the warp has no pixel)."""
        style = self.style(self.components(source, parts))
        e1 = self.enc1(torch.cat([pose, warped], 1))
        e2 = self.enc2(e1)
        x = self.enc3(e2)
        for block, s in zip(self.blocks, style.split([b.params for b in self.blocks], 1)):
            x = block(x, s)
        x = F.interpolate(x, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        x = self.dec2(torch.cat([x, e2], 1))
        x = F.interpolate(x, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        x = self.out(self.dec1(torch.cat([x, e1], 1)))
        # the gate takes the warp's pixels where they are right and paints the rest from the style codes
        gate = torch.sigmoid(x[:, 4:5]) * (warped[:, 3:4] + 1) / 2
        return torch.tanh(x[:, :3]), x[:, 3:4], gate

    def forward(self, source, parts, pose, warped, with_gate: bool = False):
        """The heads composed: (RGB in [-1, 1] on white, alpha logits N×1×H×W), and the gate if
        `with_gate` (training's gate loss)."""
        painted, alpha, gate = self.heads(source, parts, pose, warped)
        out = compose(painted, alpha, gate, warped[:, :3])
        return (out, alpha, gate) if with_gate else (out, alpha)


def compose(painted, alpha, gate, warped_rgb):
    """gate × warp + (1 − gate) × painted, on white by the alpha (logits); all in [-1, 1]."""
    rgb = gate * warped_rgb + (1 - gate) * painted
    a = torch.sigmoid(alpha)
    return rgb * a + (1 - a)  # white (1) where the person is not


def unit(t: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×C → float N×C×H×W in [-1, 1]."""
    return t.permute(0, 3, 1, 2).float() / 127.5 - 1


class PoseTransferGAN(nn.Module):
    """What trains: the generator, and ADGAN's two judges (is this image the target pose? is it the
    source's appearance?) unless training without the adversarial loss."""

    def __init__(self, adversarial: bool = True):
        super().__init__()
        self.gen = PoseTransferGenerator()
        self.disc_pose = PatchDiscriminator(18 + 3) if adversarial else None
        self.disc_app = PatchDiscriminator(3 + 3) if adversarial else None


class PoseTransferServing(nn.Module):
    """What is exported: the uint8 NHWC inputs of fashionpixel/pose_transfer.network_inputs → uint8
    NHWC `image` (the composite on the canvas), and the heads the service composes at the output's
    resolution (fashionpixel/pose_transfer.compose_highres): `gate` and `alpha` (0-255 for 0-1) and the
    `painted` RGB."""

    def __init__(self, gen: PoseTransferGenerator):
        super().__init__()
        self.gen = gen

    def forward(self, source, parts, pose, warped):
        warped = unit(warped)
        painted, alpha, gate = self.gen.heads(unit(source), parts[..., 0], unit(pose), warped)
        out = compose(painted, alpha, gate, warped[:, :3])
        return tuple(
            ((t + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            for t in (out, gate * 2 - 1, torch.sigmoid(alpha) * 2 - 1, painted)
        )
