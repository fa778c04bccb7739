"""pix2pix-style networks for skin generation: a U-Net generator and a PatchGAN discriminator.

Small enough to train from scratch on a CPU at the 128×192 canvas: the generator has five levels
(to 1/16) with skip connections, the discriminator judges overlapping ~34×34-pixel patches.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.models.blocks import conv_bn


class UNetGenerator(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, ...] = (16, 32, 64, 128, 192)):
        super().__init__()
        self.down = nn.ModuleList()
        prev = cin
        for i, w in enumerate(widths):
            self.down.append(nn.Sequential(conv_bn(prev, w, stride=1 if i == 0 else 2), conv_bn(w, w)))
            prev = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(nn.Sequential(conv_bn(prev + w_skip, w_skip), conv_bn(w_skip, w_skip)))
            prev = w_skip
        self.out = nn.Conv2d(prev, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x in [-1, 1] (N×cin×H×W, H and W multiples of 16) → RGB in [-1, 1]."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return torch.tanh(self.out(x))


class PatchDiscriminator(nn.Module):
    """Real/fake logits per patch; conditioned when it is given the generator's inputs too."""

    def __init__(self, cin: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 2, width * 4, 4, 1, 1, bias=False),
            nn.BatchNorm2d(width * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 4, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Pix2Pix(nn.Module):
    """What trains: the generator on `channels` inputs and, for the adversarial loss, its judge."""

    def __init__(self, channels: int, adversarial: bool):
        super().__init__()
        self.gen = UNetGenerator(channels)
        self.disc = PatchDiscriminator(channels + 3) if adversarial else None


def to_unit(batch: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C → float N×C×H×W in [-1, 1] (as SkinServing does in the exported graph)."""
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """A generator's float N×3×H×W in [-1, 1] → uint8 N×H×W×3 RGB (as the exported graphs round it)."""
    return ((t.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def generate(gen: UNetGenerator, x: torch.Tensor, channels: int, mask_output: bool) -> torch.Tensor:
    """The generator on the first `channels` input channels; with `mask_output` it may write only inside
    the skin mask (channel 6) and the apparel_head_foot input (channels 0-2) shows elsewhere."""
    out = gen(x[:, :channels])
    if mask_output:
        m = (x[:, 6:7] + 1) / 2
        out = out * m + x[:, :3] * (1 - m)
    return out


class SkinServing(nn.Module):
    """What is exported: uint8 N×H×W×7 (apparel_head_foot, pose, mask) in, uint8 N×H×W×3 RGB out."""

    def __init__(self, gen: UNetGenerator, channels: int = 7, mask_output: bool = True):
        super().__init__()
        self.gen, self.channels, self.mask_output = gen, channels, mask_output

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.permute(0, 3, 1, 2).float() / 127.5 - 1
        out = generate(self.gen, x, self.channels, self.mask_output)
        return ((out + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
