"""Keypoint network: a residual encoder to 1/32 and a top-down decoder back to 1/4, predicting one
heatmap per OpenPose keypoint (18). Small enough to train from scratch on two CPU cores."""

import torch
import torch.nn.functional as F
from torch import nn

from fashionpixel.keypoints import STRIDE  # noqa: F401 - one definition, shared with the services (train_pose imports it from here)
from training.models.blocks import ImageInput, add_residual_encoder, conv_bn


class PoseNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (24, 32, 64, 96, 160), decoder: int = 64, keypoints: int = 18):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        add_residual_encoder(self, widths)
        self.lat4, self.lat3 = nn.Conv2d(w4, decoder, 1), nn.Conv2d(w3, decoder, 1)
        self.lat2, self.lat1 = nn.Conv2d(w2, decoder, 1), nn.Conv2d(w1, decoder, 1)
        self.smooth3, self.smooth2, self.smooth1 = (
            conv_bn(decoder, decoder),
            conv_bn(decoder, decoder),
            conv_bn(decoder, decoder),
        )
        self.head = nn.Sequential(conv_bn(decoder, decoder), nn.Conv2d(decoder, keypoints, 1))

    @staticmethod
    def _up(x, ref):
        return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised NCHW → N×18×H/4×W/4 heatmaps (peak ≈ 1 where a keypoint is)."""
        f1 = self.enc1(self.stem(x))
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        f4 = self.enc4(f3)
        p = self.lat4(f4)
        p = self.smooth3(self._up(p, f3) + self.lat3(f3))
        p = self.smooth2(self._up(p, f2) + self.lat2(f2))
        p = self.smooth1(self._up(p, f1) + self.lat1(f1))
        return self.head(p)


class PoseNetServing(nn.Module):
    """What is exported: uint8 NHWC image in, float16 heatmaps out."""

    def __init__(self, net: PoseNet):
        super().__init__()
        self.input = ImageInput()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(self.input(image)).half()
