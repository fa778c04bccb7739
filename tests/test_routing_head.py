"""The routing head grafted onto the served general segmentation network (export/routing_head.py): it
adds an output and changes no other, computes what its numbers say, and can be taken off and put back."""

import numpy as np
import onnx
from onnx import numpy_helper

from export import routing_head
from export.onnxruntime_session import onnx_session
from fashionpixel import segmentation
from fashionpixel.models import SEGMENTATION
from tests.conftest import REPO
from tests.images import synthetic_photo

SERVED = SEGMENTATION.onnx_path(REPO / "model_repository")


def run(model: onnx.ModelProto, canvas: np.ndarray, names: list[str]) -> list[np.ndarray]:
    return onnx_session(model.SerializeToString(), 1).run(names, {"image": canvas[None]})


def test_the_head_is_one_more_output_computed_from_the_encoder_as_its_weights_say():
    served = onnx.load(str(SERVED))
    assert [o.name for o in served.graph.output] == list(SEGMENTATION.output_names)
    bare = routing_head.strip(served)
    assert [o.name for o in bare.graph.output] == ["person", "fashion"]
    assert not any(i.name.startswith(routing_head.PREFIX) for i in bare.graph.initializer)
    canvas = segmentation.prepare(synthetic_photo(400, 600))[0]
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(0, 0.01, 160 * 4 * 2), 0.3
    grafted = routing_head.graft(bare, weights, bias)
    person, fashion, cut = run(grafted, canvas, ["person", "fashion", "cut"])
    (encoder,) = run(routing_head.with_encoder(grafted), canvas, [routing_head.ENCODER])
    expected = 1 / (1 + np.exp(-(routing_head.pooled(encoder) @ weights + bias)))
    assert cut.shape == (1, 1) and cut.dtype == np.float16
    assert abs(float(cut[0, 0]) - float(expected[0])) < 1e-3
    # the probabilities are the served network's, bit for bit
    for got, want in zip((person, fashion), run(served, canvas, ["person", "fashion"])):
        assert np.array_equal(got, want)
    # the served head put back from its own weights answers as the served file does
    w = {i.name: numpy_helper.to_array(i) for i in served.graph.initializer}
    again = routing_head.graft(
        bare, w[routing_head.PREFIX + "weights"][:, 0], float(w[routing_head.PREFIX + "bias"][0])
    )
    assert np.array_equal(run(again, canvas, ["cut"])[0], run(served, canvas, ["cut"])[0])


def test_pooling_averages_the_encoder_grid_into_cells_channel_by_channel():
    encoder = np.zeros((1, 160, 12, 8), np.float32)
    encoder[0, 5, :3, :4] = 2.0  # the top-left cell of channel 5
    encoder[0, 7, 9:, 4:] = 1.0  # the bottom-right cell of channel 7
    features = routing_head.pooled(encoder).reshape(160, 4, 2)
    assert features[5, 0, 0] == 2.0 and features[7, 3, 1] == 1.0
    assert features.sum() == 3.0
