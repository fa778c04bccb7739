"""The general segmentation network's routing head, grafted onto its ONNX graph (issue 23).

A segment request whose first pass reaches the photo's top or bottom edge used to ask the pose network
whether the frame cuts the person (fashionpixel.segmentation.cut_by_frame), ~14 ms of CPU beside the
network's own. The head answers the same question from what the network has already computed: its
deepest encoder block (160 channels on a 12×8 grid of the canvas), averaged over a 4×2 grid of cells
(1 280 numbers that say what is where), through a logistic regression fitted by training.fit_routing to
the pose network's answers. It is one more output, `cut` (N×1, the probability that the frame cuts the
person), computed from tensors the network holds anyway: AveragePool, Flatten, Gemm, Sigmoid.

It is written into the ONNX graph rather than into the PyTorch module because the served file is the
product (its probabilities are what every report measured): grafting adds nodes and leaves the others
as they are, so `person` and `fashion` stay bit for bit what they were."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fashionpixel.models import SEGMENTATION

ENCODER = "/net/enc4/enc4.1/Relu_output_0"  # SegNet's deepest encoder block, as torch.onnx names it
CELL = (3, 4)  # encoder cells averaged into one: the 12×8 grid becomes 4×2
OUTPUT = SEGMENTATION.outputs[-1].name  # "cut"
PREFIX = "routing/"  # the head's nodes and weights


def pooled(encoder: np.ndarray) -> np.ndarray:
    """N×C×12×8 encoder maps → N×(C·4·2) features, in the graph's order (channel, row, column)."""
    n, c, h, w = encoder.shape
    rows, cols = CELL
    cells = encoder.astype(np.float32).reshape(n, c, h // rows, rows, w // cols, cols).mean((3, 5))
    return cells.reshape(n, -1)


def strip(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` without its routing head (unchanged if it has none)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    keep = [n for n in graph.node if not n.name.startswith(PREFIX)]
    del graph.node[:]
    graph.node.extend(keep)
    for field in (graph.output, graph.initializer):
        kept = [v for v in field if v.name != OUTPUT and not v.name.startswith(PREFIX)]
        del field[:]
        field.extend(kept)
    return model


def with_encoder(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` (without its head) that also outputs the encoder maps, for the fit."""
    model = strip(model)
    model.graph.output.append(helper.make_tensor_value_info(ENCODER, TensorProto.FLOAT, None))
    return model


def graft(model: onnx.ModelProto, weights: np.ndarray, bias: float) -> onnx.ModelProto:
    """A copy of `model` whose routing head (replaced if there was one) is sigmoid(pooled(encoder) · weights
    + bias), as float16 `cut` of shape N×1 after the probabilities."""
    model = strip(model)
    graph = model.graph
    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(-1, 1), PREFIX + "weights")
    b = numpy_helper.from_array(np.asarray([bias], np.float32), PREFIX + "bias")
    graph.initializer.extend([w, b])
    pool, flat, logit, prob = (PREFIX + s for s in ("cells", "features", "logit", "probability"))
    graph.node.extend(
        [
            helper.make_node("AveragePool", [ENCODER], [pool], name=pool, kernel_shape=list(CELL), strides=list(CELL)),
            helper.make_node("Flatten", [pool], [flat], name=flat, axis=1),
            helper.make_node("Gemm", [flat, w.name, b.name], [logit], name=logit),
            helper.make_node("Sigmoid", [logit], [prob], name=prob),
            helper.make_node("Cast", [prob], [OUTPUT], name=PREFIX + "cast", to=TensorProto.FLOAT16),
        ]
    )
    batch = graph.output[0].type.tensor_type.shape.dim[0].dim_param
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT16, [batch, 1]))
    onnx.checker.check_model(model)
    return model
