"""FPN-style encoder-decoder with named 1×1 heads: person (2) and fashion (7) for segmentation,
garment groups (5) for the cutout model.

Sized for CPU training from scratch: a residual encoder down to 1/32 with a pooled-context branch,
a top-down decoder with lateral connections back to 1/2, and 1×1 heads upsampled to full size.
"""

import torch
import torch.nn.functional as F
from torch import nn

from training.models.blocks import ImageInput, ResBlock, add_residual_encoder, conv_bn


class SegNet(nn.Module):
    """`deeper` = (n3, n4): that many more residual blocks at 1/16 and at 1/32 (DeepSegNet), appended to
    enc3 and enc4, so that every weight of the plain SegNet keeps its name."""

    def __init__(
        self,
        widths: tuple[int, ...] = (24, 32, 64, 96, 160),
        decoder: int = 64,
        heads: dict[str, int] | None = None,
        deeper: tuple[int, int] = (0, 0),
    ):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        add_residual_encoder(self, widths)
        # the added blocks alternate their dilation, widening the context where the map is small and cheap
        for stage, width, count in ((self.enc3, w3, deeper[0]), (self.enc4, w4, deeper[1])):
            for i in range(count):
                stage.append(ResBlock(width, width, dilation=(4, 2)[i % 2]))
        # Global context: the whole-image average tells the decoder what kind of photo this is.
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(w4, w4, 1), nn.ReLU(inplace=True))
        self.lat4 = nn.Conv2d(w4, decoder, 1)
        self.lat3 = nn.Conv2d(w3, decoder, 1)
        self.lat2 = nn.Conv2d(w2, decoder, 1)
        self.lat1 = nn.Conv2d(w1, decoder, 1)
        self.lat0 = nn.Conv2d(w0, decoder // 2, 1)
        self.smooth3 = conv_bn(decoder, decoder)
        self.smooth2 = conv_bn(decoder, decoder)
        self.smooth1 = conv_bn(decoder, decoder)
        self.smooth0 = conv_bn(decoder + decoder // 2, decoder // 2)
        heads = heads or {"person": 2, "fashion": 7}
        self.head_names = tuple(heads)
        for name, classes in heads.items():  # attribute names keep "<name>_head" checkpoints loadable
            setattr(self, f"{name}_head", nn.Conv2d(decoder // 2, classes, 1))

    @staticmethod
    def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalised NCHW float → one logits tensor per head (in `head_names` order) at the input size."""
        f0 = self.stem(x)
        f1 = self.enc1(f0)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        f4 = self.enc4(f3)
        f4 = f4 + self.context(f4)
        p = self.lat4(f4)
        p = self.smooth3(self._up(p, f3) + self.lat3(f3))
        p = self.smooth2(self._up(p, f2) + self.lat2(f2))
        p = self.smooth1(self._up(p, f1) + self.lat1(f1))
        p = self.smooth0(torch.cat([self._up(p, f0), self.lat0(f0)], dim=1))
        return tuple(
            F.interpolate(getattr(self, f"{name}_head")(p), size=x.shape[-2:], mode="bilinear", align_corners=False)
            for name in self.head_names
        )


class DeepSegNet(SegNet):
    """SegNet with two more residual blocks at 1/16 and two at 1/32: +1.2 M parameters where the map is
    smallest (+13 % multiply-adds), for the semantic errors a crop specialist makes (a door or a coat
    beside the person taken for them). `grow_from` starts it from a trained SegNet."""

    def __init__(self, heads: dict[str, int] | None = None):
        super().__init__(heads=heads, deeper=(2, 2))

    def grow_from(self, state: dict[str, torch.Tensor]) -> None:
        """A plain SegNet's weights, with every added block an identity at first: the last BatchNorm of
        each added block scales by zero, so its residual adds nothing until training moves it (its input
        is a ReLU's output, which the block's closing ReLU passes unchanged)."""
        added = {f"enc{n}.{i}" for n, stage in ((3, self.enc3), (4, self.enc4)) for i in range(2, len(stage))}
        own = {k: v.shape for k, v in self.state_dict().items() if ".".join(k.split(".")[:2]) not in added}
        if {k: v.shape for k, v in state.items()} != own:
            raise ValueError("not a SegNet's weights: their names or shapes differ from a plain SegNet's")
        self.load_state_dict(state, strict=False)
        with torch.no_grad():
            for name in added:
                stage, index = name.split(".")
                getattr(self, stage)[int(index)].conv2[1].weight.zero_()


def channel_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the channels of NCHW logits, spelled out. ONNX Runtime runs a Softmax on axis 1
    by transposing to channels-last and back: 38 % of the segmentation network's time. This form
    exports as ReduceMax/Sub/Exp/ReduceSum/Div, which runs the whole network ~30 % faster."""
    e = (logits - logits.amax(1, keepdim=True)).exp()
    return e / e.sum(1, keepdim=True)


class SegNetServing(nn.Module):
    """What is exported: uint8 NHWC image in, per-class probabilities (float16) out."""

    def __init__(self, net: SegNet):
        super().__init__()
        self.input = ImageInput()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(channel_softmax(logits).half() for logits in self.net(self.input(image)))
