"""More segmentation architectures with SegNet's interface, for the comparison issue 3 asks for.

Every network here takes a normalised N×3×H×W float tensor and returns one logits tensor per head
(in `head_names` order, default person 2 + fashion 7) at the input size; its heads are attributes
`<name>_head`, as in SegNet, so `SegNetServing` exports any of them with the same I/O. All are sized
for CPU training from scratch: 1.0-1.6 M parameters and 1.2-2.9 G multiply-adds at 256×384 (SegNet:
1.5 M, 1.7 G), which keeps their ONNX Runtime latency on a CPU within ~1.6× of SegNet's.

- `UNet`: the classic symmetric encoder-decoder with skip concatenations.
- `DeepLabV3Plus`: a separable residual backbone to output stride 16, ASPP, and the v3+ decoder.
- `U2Net`: a small U²-Net (nested RSU blocks, side outputs fused by a 1×1 convolution); its
  `forward_with_sides` also returns the side outputs for the fused multi-output loss.

`ARCHITECTURES` maps the names the training and export commands accept to the classes;
`recorded_arch` and `load_checkpoint` read which one a checkpoint holds.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.models.blocks import conv_bn
from training.models.segmentation import DeepSegNet, SegNet

DEFAULT_HEADS = {"person": 2, "fashion": 7}


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize to an explicit size (taken from a reference tensor, so odd sizes line up)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _set_heads(net: nn.Module, heads: dict[str, int] | None, make) -> None:
    """`<name>_head` attributes, as SegNet names them; `make(classes)` builds one head."""
    heads = heads or dict(DEFAULT_HEADS)
    net.head_names = tuple(heads)
    for name, classes in heads.items():
        setattr(net, f"{name}_head", make(classes))


# --------------------------------------------------------------------------------------------- UNet


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """U-Net's unit: two 3×3 conv-BN-ReLU (BN lets it train from scratch at a high learning rate)."""
    return nn.Sequential(conv_bn(cin, cout), conv_bn(cout, cout))


class UNet(nn.Module):
    """Classic U-Net, five levels (full size down to 1/16), small widths.

    - Max-pooling down, as in the original: cheap and keeps the strongest response at each step.
    - Up: a 1×1 conv brings the channels to the skip's width *at the coarse level*, bilinear ×2 follows
      (to the skip's size, so odd sizes line up), then the concatenation. This plays the
      role of the original's 2×2 transposed convolution (learned channel reduction before the
      concatenation) at a quarter of its cost at the fine level, without checkerboard artefacts.
    - Widths 16, 24, 48, 96, 192 rather than the original's doubling from 64: every level of a doubling
      U-Net costs the same multiply-adds, and the full-size level (~1/3 of the total here) already
      makes this the slowest design per parameter on a CPU; the fine levels mostly need edges, not
      many features, so the growth is slower at the top and the parameters sit at the bottom.
    - Four poolings keep 384×256 at 24×16 at the bottom, enough context for a person photo with a
      192-channel bottleneck; a fifth would leave 12×8 cells that zero padding dominates.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 96, 192), heads: dict[str, int] | None = None):
        super().__init__()
        self.down = nn.ModuleList([double_conv(3, widths[0])])
        self.down.extend(double_conv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.reduce = nn.ModuleList(conv_bn(b, a, k=1) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(double_conv(2 * a, a) for a in widths[:-1])
        _set_heads(self, heads, lambda classes: nn.Conv2d(widths[0], classes, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            skip = skips.pop()
            x = self.up[i](torch.cat([_resize(self.reduce[i](x), skip.shape[-2:]), skip], dim=1))
        return tuple(getattr(self, f"{name}_head")(x) for name in self.head_names)


# ----------------------------------------------------------------------------------------- DeepLab


class SepConv(nn.Sequential):
    """Depthwise-separable 3×3 conv (depthwise → BN → ReLU → pointwise → BN → ReLU): ~1/8 of a full
    3×3's cost at these widths, which is what lets DeepLab afford wide features at 1/16."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1, last_relu: bool = True):
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, dilation, dilation=dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            *([nn.ReLU(inplace=True)] if last_relu else []),
        )


class SepResBlock(nn.Module):
    """Xception-style residual unit: two separable convs and a (projected, when the shape changes)
    shortcut; the stride, if any, is in the first depthwise conv."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            SepConv(cin, cout, stride, dilation), SepConv(cout, cout, 1, dilation, last_relu=False)
        )
        self.skip = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1×1 branch, atrous separable 3×3 branches and an image-pooling
    branch, concatenated and projected by a 1×1.

    The rates (3, 6, 9) are the paper's (6, 12, 18) scaled to this feature map: 384×256 at output
    stride 16 is 24×16, so rate 18 would sample mostly zero padding; 9 still spans over half the
    height. The pooling branch has no BatchNorm: its map is 1×1, so BN would normalise over the batch
    alone (and fail at batch 1)."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] = (3, 6, 9)):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn(cin, cout, k=1)] + [SepConv(cin, cout, dilation=r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(conv_bn(cout * (len(rates) + 2), cout, k=1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+ with a small separable residual backbone, output stride 16.

    - Backbone: a full 3×3 stem at 1/2 (depthwise convs on 3 channels learn little), then residual
      separable units; the 1/16 stage keeps its resolution and grows the receptive field with
      dilation (2, then 4) instead of a fifth stride, as output stride 16 prescribes.
    - ASPP at 1/16 (see `ASPP`), 160 channels.
    - v3+ decoder: ASPP upsampled ×4 to the 1/4 low-level features, which a 1×1 projects to 48
      channels so they do not outweigh the semantic ones, concatenated, two separable 3×3 convs, then
      the 1×1 heads at 1/4, bilinearly upsampled to the input size (as in the paper).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 320),
        aspp: int = 160,
        decoder: int = 128,
        heads: dict[str, int] | None = None,
    ):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(conv_bn(3, w0, stride=2), conv_bn(w0, w0))  # 1/2
        self.stage1 = nn.Sequential(SepResBlock(w0, w1, stride=2), SepResBlock(w1, w1))  # 1/4
        self.stage2 = nn.Sequential(SepResBlock(w1, w2, stride=2), SepResBlock(w2, w2))  # 1/8
        self.stage3 = nn.Sequential(
            SepResBlock(w2, w3, stride=2),
            SepResBlock(w3, w3),  # 1/16
            SepResBlock(w3, w3, dilation=2),
            SepResBlock(w3, w3, dilation=4),
        )
        self.aspp = ASPP(w3, aspp)
        self.low = conv_bn(w1, 48, k=1)
        self.decoder = nn.Sequential(SepConv(aspp + 48, decoder), SepConv(decoder, decoder))
        _set_heads(self, heads, lambda classes: nn.Conv2d(decoder, classes, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        low = self.stage1(self.stem(x))
        y = self.aspp(self.stage3(self.stage2(low)))
        y = self.decoder(torch.cat([_resize(y, low.shape[-2:]), self.low(low)], dim=1))
        return tuple(_resize(getattr(self, f"{name}_head")(y), x.shape[-2:]) for name in self.head_names)


# ------------------------------------------------------------------------------------------ U²-Net


class RSU(nn.Module):
    """Residual U-block: an input conv, then a small U-Net on its output (`depth` levels, max-pooling
    down, bilinear up, concatenations) whose result is added back to the input conv's output.

    `dilated=True` is the RSU-4F variant: no pooling, dilations 1, 2, 4, 8 instead (used where the
    map is already small, so pooling further would leave nothing to resolve). The U inside is what
    gives every stage a multi-scale receptive field at the cost of `mid` (small) channels only."""

    def __init__(self, depth: int, cin: int, mid: int, cout: int, dilated: bool = False):
        super().__init__()
        self.dilated = dilated
        dil = [2**i for i in range(depth)] if dilated else [1] * (depth - 1) + [2]
        self.inp = conv_bn(cin, cout)
        self.enc = nn.ModuleList(
            [conv_bn(cout, mid, dilation=dil[0])] + [conv_bn(mid, mid, dilation=d) for d in dil[1:]]
        )
        # on the way up, bottom first: each fuses the level above with its skip at that level's
        # dilation; the last one returns to `cout` channels
        self.dec = nn.ModuleList(
            [conv_bn(2 * mid, mid, dilation=d) for d in reversed(dil[1:-1])] + [conv_bn(2 * mid, cout, dilation=dil[0])]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.inp(x)
        feats, y = [], x_in
        for i, conv in enumerate(self.enc):
            if i and not self.dilated and i < len(self.enc) - 1:
                y = F.max_pool2d(y, 2, ceil_mode=True)
            y = conv(y)
            feats.append(y)
        y = feats.pop()  # the bottom (dilated, same size as the level above it)
        for i, conv in enumerate(self.dec):
            skip = feats.pop()
            if i and not self.dilated:  # the bottom level is the size of the one above it
                y = _resize(y, skip.shape[-2:])
            y = conv(torch.cat([y, skip], dim=1))
        return y + x_in


class U2Head(nn.Module):
    """One task's outputs: a 3×3 side conv on every decoder stage (plus the bottom encoder stage, as in
    U²-Net) and a 1×1 conv fusing them at the finest decoder resolution."""

    def __init__(self, widths: list[int], classes: int):
        super().__init__()
        self.sides = nn.ModuleList(nn.Conv2d(w, classes, 3, padding=1) for w in widths)
        self.fuse = nn.Conv2d(classes * len(widths), classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        sides = [conv(f) for conv, f in zip(self.sides, feats)]
        fused = self.fuse(torch.cat(sides[:1] + [_resize(s, sides[0].shape[-2:]) for s in sides[1:]], dim=1))
        return fused, sides


class U2Net(nn.Module):
    """Small U²-Net (the U²-Net-lite layout: RSU-7, 6, 5, 4, 4F, 4F down, mirrored up, mid 16 channels).

    - A stride-2 conv stem first: RSU-7 at full 256×384 with 64 channels costs several times
      SegNet's whole network on a CPU; from 1/2 the nested U still reaches 1/64 inside the first
      stage, and the outputs are bilinearly upsampled like SegNet's.
    - Outer widths 24 and 32 at the two finest stages, 64-128 below (the lite model has 64 everywhere),
      for the same reason: the fine stages are where the pixels are, the coarse ones are cheap.
    - Side outputs at the six coarsest-to-finest stages (d1…d5 and the bottom e6); `forward` returns
      only the fused logits (what is exported), `forward_with_sides` also returns the sides, each
      upsampled to the input size, for the fused multi-output loss.
    """

    def __init__(
        self,
        stem: int = 16,
        mid: int = 16,
        widths: tuple[int, ...] = (24, 32, 64, 96, 128, 128),
        heads: dict[str, int] | None = None,
    ):
        super().__init__()
        w = widths
        self.stem = conv_bn(3, stem, stride=2)
        depths = (7, 6, 5, 4, 4, 4)
        dilated = (False, False, False, False, True, True)
        ins = (stem,) + w[:-1]
        self.enc = nn.ModuleList(RSU(d, c, mid, o, f) for d, c, o, f in zip(depths, ins, w, dilated))
        # decoder stage i (finest first) takes stage i+1's output (upsampled) and encoder i's
        self.dec = nn.ModuleList(RSU(depths[i], w[i + 1] + w[i], mid, w[i], dilated[i]) for i in range(5))
        _set_heads(self, heads, lambda classes: U2Head(list(w), classes))

    def _heads(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        y, enc = self.stem(x), []
        for i, block in enumerate(self.enc):
            y = block(y if i == 0 else F.max_pool2d(y, 2, ceil_mode=True))
            enc.append(y)
        feats = [enc[-1]]  # coarsest first
        for i in reversed(range(len(self.dec))):
            feats.append(self.dec[i](torch.cat([_resize(feats[-1], enc[i].shape[-2:]), enc[i]], dim=1)))
        feats = feats[::-1]  # finest first: d1 … d5, e6
        return [getattr(self, f"{name}_head")(feats) for name in self.head_names]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_resize(fused, x.shape[-2:]) for fused, _ in self._heads(x))

    def forward_with_sides(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], list[tuple[torch.Tensor, ...]]]:
        """(fused logits per head, [side logits per head for each side, finest first]), all at the
        input size."""
        outs = self._heads(x)
        fused = tuple(_resize(f, x.shape[-2:]) for f, _ in outs)
        sides = [tuple(_resize(s[i], x.shape[-2:]) for _, s in outs) for i in range(len(outs[0][1]))]
        return fused, sides


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "segnet": SegNet,
    "segnet-deep": DeepSegNet,
    "unet": UNet,
    "deeplabv3plus": DeepLabV3Plus,
    "u2net": U2Net,
}


def recorded_arch(run_args: dict) -> str:
    """The architecture a training run recorded in its checkpoint's args (SegNet before `--arch` existed)."""
    return run_args.get("arch", "segnet")


def load_checkpoint(path: Path, arch: str) -> dict:
    """A checkpoint to resume or start from; refused with a clear message (not a state-dict mismatch)
    when it holds another architecture than `arch`."""
    checkpoint = torch.load(path, weights_only=False)
    recorded = recorded_arch(checkpoint.get("args", {}))
    if recorded != arch:
        raise SystemExit(f"{path} is a {recorded} checkpoint, not a {arch} checkpoint (--arch {arch})")
    return checkpoint
