"""Rewrite the channel Softmax of already exported models into the form the exporters now write.

    python -m export.rewrite_softmax model_repository/segmentation/1/model.onnx model_repository/cutout/1/model.onnx

ONNX Runtime runs Softmax on axis 1 of an NCHW tensor by transposing it to channels-last and back
(38 % of the segmentation network's time). The exporters now write ReduceMax/Sub/Exp/ReduceSum/Div
(`training.models.segmentation.channel_softmax`); this applies the same change to an ONNX file in
place, for models whose checkpoints were not kept, and checks the outputs did not change.
"""

import argparse
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


def decompose_channel_softmax(model: onnx.ModelProto) -> int:
    """Replace every Softmax over axis 1 in `model` (opset 13-17 forms); returns how many."""
    graph, nodes, count = model.graph, [], 0
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        if node.op_type != "Softmax" or axis != 1:
            nodes.append(node)
            continue
        x, y, p = node.input[0], node.output[0], f"{node.name or node.output[0]}_decomposed"
        graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), f"{p}_axes"))
        nodes += [
            helper.make_node("ReduceMax", [x], [f"{p}_max"], axes=[1], keepdims=1),
            helper.make_node("Sub", [x, f"{p}_max"], [f"{p}_shifted"]),
            helper.make_node("Exp", [f"{p}_shifted"], [f"{p}_exp"]),
            helper.make_node("ReduceSum", [f"{p}_exp", f"{p}_axes"], [f"{p}_sum"], keepdims=1),
            helper.make_node("Div", [f"{p}_exp", f"{p}_sum"], [y]),
        ]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return count


def outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [o.astype(np.float32) for o in session.run(None, feeds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--atol", type=float, default=2e-3, help="largest change allowed in any output (float16 rounding)")
    args = ap.parse_args()
    for path in args.models:
        model = onnx.load(str(path))
        # The models this is for take uint8 images (any batch: 1 here).
        feeds = {
            i.name: np.random.default_rng(0).integers(
                0, 256, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim], dtype=np.uint8
            )
            for i in model.graph.input
        }
        before = outputs(model, feeds)
        count = decompose_channel_softmax(model)
        worst = max(float(np.abs(a - b).max()) for a, b in zip(before, outputs(model, feeds)))
        if worst > args.atol:
            raise SystemExit(f"{path}: outputs changed by {worst}")
        onnx.save(model, str(path))
        print(f"{path}: {count} Softmax rewritten, outputs within {worst:.1e}")


if __name__ == "__main__":
    main()
