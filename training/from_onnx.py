"""Continue training from a served ONNX file: its weights back into the PyTorch network.

The exported graphs have every BatchNorm folded into the convolution before it (PyTorch's ONNX export
does that in eval mode), so a served model holds conv weights and biases only. `load_onnx_weights`
walks the network in call order beside the ONNX graph's Conv nodes (both follow the forward pass),
puts each folded weight into its Conv2d and each folded bias into the BatchNorm after it (or the conv's
own bias), and sets that BatchNorm to the identity (mean 0, variance 1 - eps, scale 1). The network
then computes exactly what the ONNX file does (checked by `check_against_onnx`).

Such a network must be fine-tuned with its BatchNorms frozen (`freeze_batchnorm`): batch statistics
would replace the folded ones. The scale and shift stay trainable, like detection's frozen BN. Or
`thaw_batchnorm` gives it live BatchNorms again without changing what it computes.
"""

import types
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn


def _calls(net: nn.Module, example: torch.Tensor | tuple) -> list[nn.Module]:
    """The Conv2d and BatchNorm2d modules in the order the forward pass calls them (`example`: the
    network's input, or a tuple of its inputs)."""
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _inp: order.append(mod))
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
    ]
    try:
        with torch.no_grad():
            net.eval()(*example) if isinstance(example, tuple) else net.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return order


def load_onnx_weights(net: nn.Module, onnx_path: Path, example: torch.Tensor | tuple) -> nn.Module:
    """Fill `net` (the architecture the ONNX file was exported from) with the file's weights."""
    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    calls = _calls(net, example)
    pairs = []  # (conv, the BatchNorm right after it or None)
    for i, m in enumerate(calls):
        if isinstance(m, nn.Conv2d):
            nxt = calls[i + 1] if i + 1 < len(calls) else None
            pairs.append((m, nxt if isinstance(nxt, nn.BatchNorm2d) else None))
    if len(pairs) != len(convs):
        raise ValueError(f"{onnx_path}: {len(convs)} Conv nodes, the network calls {len(pairs)} convolutions")
    with torch.no_grad():
        for (conv, bn), node in zip(pairs, convs):
            weight = torch.from_numpy(init[node.input[1]].astype(np.float32))
            if weight.shape != conv.weight.shape:
                raise ValueError(f"{node.name}: weight {tuple(weight.shape)} vs network {tuple(conv.weight.shape)}")
            bias = torch.from_numpy(init[node.input[2]].astype(np.float32)) if len(node.input) > 2 else None
            conv.weight.copy_(weight)
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.bias.copy_(bias if bias is not None else torch.zeros_like(bn.bias))
            elif conv.bias is not None:
                conv.bias.copy_(bias if bias is not None else torch.zeros_like(conv.bias))
            elif bias is not None and bias.abs().max() > 0:
                raise ValueError(f"{node.name} has a bias the network's convolution cannot hold")
    return net


def _frozen_forward(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def is_frozen(run_args: dict) -> bool:
    """Whether a run's BatchNorms are folded and frozen: as the run recorded, else whether it started from an
    ONNX file."""
    if "frozen_batchnorm" in run_args:
        return bool(run_args["frozen_batchnorm"])
    return str(run_args.get("init") or "").endswith(".onnx")


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Every BatchNorm2d normalises with its stored statistics, in training too (scale, shift trainable)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = types.MethodType(_frozen_forward, m)
    return net


def thaw_batchnorm(net: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Live BatchNorms for a folded network (each the identity plus the folded shift), the function
    unchanged: each takes the mean and variance of its input over `batches` as its statistics, and a scale
    and shift that undo them, so in eval mode it still computes x + shift, and in training it
    normalises with the batch's statistics again. Frozen and folded, a network trains as one without
    normalisation; the segmentation card measures what thawing buys."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {}  # BatchNorm → (Σx, Σx², count) per channel of its input

    def collect(mod, inp):
        x = inp[0].detach().double().transpose(0, 1).flatten(1)  # channels × values
        total, squares, n = sums.get(mod, (0, 0, 0))
        sums[mod] = (total + x.sum(1), squares + (x * x).sum(1), n + x.shape[1])

    hooks = [m.register_forward_pre_hook(collect) for m in norms]
    try:
        with torch.no_grad():
            net.eval()
            for x in batches:
                net(x)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for m in norms:
            total, squares, n = sums[m]
            mean = total / n
            var = (squares / n - mean * mean).clamp_min(0)
            # now y = a x + c; keep that with the new statistics: y = (x - mean) / sqrt(var + eps) g + b
            a = m.weight.double() / (m.running_var.double() + m.eps).sqrt()
            c = m.bias.double() - a * m.running_mean.double()
            m.weight.copy_(a * (var + m.eps).sqrt())
            m.bias.copy_(c + a * mean)
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.zero_()
    return net


def check_against_onnx(
    serving: nn.Module,
    onnx_path: Path,
    images: np.ndarray | dict[str, np.ndarray],
    outputs: list[str],
    atol: float = 2e-3,
) -> float:
    """Max |Δ| between the serving module and the ONNX file on uint8 NHWC `images` (the input named
    "image"), or on named inputs, given in the order the module takes them; raises above atol."""
    import onnxruntime as ort

    feed = images if isinstance(images, dict) else {"image": images}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    want = session.run(outputs, feed)
    with torch.no_grad():
        got = serving.eval()(*(torch.from_numpy(np.ascontiguousarray(v)) for v in feed.values()))
    got = got if isinstance(got, (tuple, list)) else (got,)
    worst = max(float(np.abs(g.float().numpy() - w.astype(np.float32)).max()) for g, w in zip(got, want))
    if worst > atol:
        raise ValueError(f"{onnx_path}: the loaded network differs from the file by {worst:.4f} > {atol}")
    return worst
