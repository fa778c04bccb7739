"""Small building blocks shared by the networks."""

import numpy as np
import torch
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (a projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, dilation)
        self.conv2 = nn.Sequential(
            nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout)
        )
        self.skip = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(self.conv1(x)) + self.skip(x))


def add_residual_encoder(net: nn.Module, widths: tuple[int, ...]) -> None:
    """The residual encoder PoseNet and SegNet share, set as net.stem (1/2) and net.enc1-enc4 (1/4 to
    1/32, dilated at the two deepest): attributes of the network itself, so that its weights keep the
    names the served files and checkpoints were saved under."""
    w0, w1, w2, w3, w4 = widths
    net.stem = nn.Sequential(conv_bn(3, w0, stride=2), conv_bn(w0, w0))  # 1/2
    net.enc1 = ResBlock(w0, w1, stride=2)  # 1/4
    net.enc2 = nn.Sequential(ResBlock(w1, w2, stride=2), ResBlock(w2, w2))  # 1/8
    net.enc3 = nn.Sequential(ResBlock(w2, w3, stride=2), ResBlock(w3, w3, dilation=2))  # 1/16
    net.enc4 = nn.Sequential(ResBlock(w3, w4, stride=2), ResBlock(w4, w4, dilation=2))  # 1/32


class ImageInput(nn.Module):
    """uint8 NHWC RGB (what the services send) → normalised float NCHW, inside the exported graph."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        return (x - self.mean) / self.std


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 RGB → normalised N×3×H×W float, as ImageInput does inside the exported graph."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
