"""The model registry (fashionpixel/models.py) against what is committed: every model's Triton configs
and ONNX graph have its tensors (names in order, dtypes, dims; batch axis first and dynamic), and the
networks are reached through it in-process as in the services."""

import asyncio

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from export.onnxruntime_session import onnx_session
from export.triton_config import SPECS
from fashionpixel import keypoints, segmentation
from fashionpixel.models import MODELS, POSE, SEGMENTATION, Tensor
from fashionpixel.networks import OnnxNetwork, infer_with
from fashionpixel.stages import inline, untimed
from tests.conftest import REPO
from tests.images import synthetic_photo

REPOSITORY = REPO / "model_repository"
ONNX_TYPES = {"UINT8": onnx.TensorProto.UINT8, "FP16": onnx.TensorProto.FLOAT16}


def test_triton_serves_every_registry_model_as_registered():
    assert {name: spec.model for name, spec in SPECS.items()} == MODELS


def config_tensors(path) -> tuple[str, tuple[Tensor, ...], tuple[Tensor, ...]]:
    config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())

    def tensors(entries):
        return tuple(
            Tensor(t.name, model_config_pb2.DataType.Name(t.data_type).removeprefix("TYPE_"), tuple(t.dims))
            for t in entries
        )

    return config.name, tensors(config.input), tensors(config.output)


@pytest.mark.parametrize("config", ["config.pbtxt", "configs/gpu.pbtxt"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_triton_configs_have_the_registry_tensors(name, config):
    model = MODELS[name]
    assert config_tensors(REPOSITORY / name / config) == (model.name, model.inputs, model.outputs)


def onnx_tensors(values) -> tuple[tuple[str, int, tuple], ...]:
    """(name, element type, dims without the batch axis) of graph inputs or outputs; the batch axis
    must be dynamic (a named dim, not a number)."""
    out = []
    for v in values:
        t = v.type.tensor_type
        batch, *dims = t.shape.dim
        assert batch.dim_param and not batch.HasField("dim_value"), f"{v.name}: batch axis not dynamic"
        out.append((v.name, t.elem_type, tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)))
    return tuple(out)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_graphs_have_the_registry_tensors(name):
    model = MODELS[name]
    proto = onnx.load(model.onnx_path(REPOSITORY), load_external_data=False)
    # the exports' outputs carry symbolic dims (the Softmax rewrite, the Casts): inference makes them numbers
    graph = onnx.shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True).graph

    def want(tensors):
        return tuple((t.name, ONNX_TYPES[t.dtype], t.dims) for t in tensors)

    assert onnx_tensors(graph.input) == want(model.inputs)
    assert onnx_tensors(graph.output) == want(model.outputs)


def test_a_call_off_the_contract_is_refused():
    canvas = np.zeros(POSE.inputs[0].dims, np.uint8)
    assert POSE.batch_of_one({"image": canvas})["image"].shape == (1, *POSE.inputs[0].dims)
    for wrong in (
        {"picture": canvas},
        {"image": canvas[1:]},
        {"image": canvas.astype(np.float32)},
        {"image": canvas, "extra": canvas},
    ):
        with pytest.raises(ValueError):
            POSE.batch_of_one(wrong)


def test_onnx_network_runs_the_pipelines_in_process():
    network = OnnxNetwork({m.name: onnx_session(m.onnx_path(REPOSITORY), threads=1) for m in (SEGMENTATION, POSE)})
    photo = synthetic_photo(300, 450)
    k = asyncio.run(keypoints.estimate(photo, infer=infer_with(network, POSE), cpu=inline, stage=untimed))
    assert k.shape == (18, 3) and (k[:, 0] < 300).all() and (k[:, 1] < 450).all()
    canvas, _ = segmentation.prepare(photo)
    person, fashion, cut = asyncio.run(infer_with(network, SEGMENTATION)(canvas))
    assert (person.shape, fashion.shape, cut.shape) == tuple(t.dims for t in SEGMENTATION.outputs)
    assert np.allclose(person.astype(np.float32).sum(0), 1, atol=1e-2)  # probabilities
    assert 0 <= cut[0] <= 1  # the routing head's probability that the frame cuts the person
