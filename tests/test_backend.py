"""Our Python-based "onnxruntime" Triton backend (runtime/backends/onnxruntime/model.py) outside Triton:
triton_python_backend_utils exists only inside Triton's stub process, so the few names the backend
uses are given here, and the backend runs the committed segmentation network as Triton would call it."""

import importlib.util
import json
import os
import sys
import time
import types

import numpy as np
import pytest

from runtime.stack import REPO, rss_mb

BACKEND = REPO / "runtime" / "backends" / "onnxruntime" / "model.py"


class _Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


class _Response:
    def __init__(self, tensors=(), error=None):
        self.tensors, self.error = {t.name: t.array for t in tensors}, error


@pytest.fixture(scope="module")
def backend_module():
    utils = types.ModuleType("triton_python_backend_utils")
    utils.Tensor = _Tensor
    utils.InferenceResponse = _Response
    utils.TritonError = str
    utils.get_input_tensor_by_name = lambda request, name: request[name]
    utils.triton_string_to_numpy = lambda name: np.dtype(name.removeprefix("TYPE_").lower())
    sys.modules["triton_python_backend_utils"] = utils
    try:
        spec = importlib.util.spec_from_file_location("fp_onnxruntime_backend", BACKEND)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["triton_python_backend_utils"]


def load(module, model: str, **parameters):
    repository = REPO / "model_repository"
    config = (repository / model / "config.pbtxt").read_text()
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    parsed = json_format.MessageToDict(
        text_format.Parse(config, model_config_pb2.ModelConfig()), preserving_proto_field_name=True
    )
    parsed["parameters"] |= {key: {"string_value": str(value)} for key, value in parameters.items()}
    backend = module.TritonPythonModel()
    backend.initialize(
        {"model_config": json.dumps(parsed), "model_repository": str(repository / model), "model_version": "1"}
    )
    return backend


def test_a_lone_request_gets_every_thread_and_a_batch_one_thread_each(backend_module):
    """segmentation: 2 threads for a lone request, 1 for a batch that Triton formed from a queue, both
    sessions answering alike (the same network) and split back per request."""
    backend = load(backend_module, "segmentation")
    assert backend.session.get_session_options().intra_op_num_threads == 2
    assert backend.busy_session.get_session_options().intra_op_num_threads == 1
    used = []
    for name in ("session", "busy_session"):
        session = getattr(backend, name)
        run = session.run
        setattr(
            backend, name, types.SimpleNamespace(run=lambda *a, _run=run, _name=name: used.append(_name) or _run(*a))
        )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (1, 384, 256, 3), dtype=np.uint8) for _ in range(2)]
    alone = [backend.execute([{"image": _Tensor("image", image)}])[0] for image in images]
    together = backend.execute([{"image": _Tensor("image", image)} for image in images])
    assert used == ["session", "session", "busy_session"]
    for one, both in zip(alone, together):
        assert one.error is None and both.error is None
        for name in ("person", "fashion"):
            assert both.tensors[name].shape == one.tensors[name].shape == (1, *one.tensors[name].shape[1:])
            assert np.abs(both.tensors[name].astype(np.float32) - one.tensors[name].astype(np.float32)).max() < 2e-3


def test_a_model_without_the_busy_setting_has_one_session(backend_module):
    backend = load(backend_module, "pose")
    assert backend.busy_session is backend.session


@pytest.mark.parametrize("release", [True, False])
def test_an_idle_model_gives_its_arena_back(backend_module, release):
    """A batch of two grows the segmentation network's arena by its activations (~75 MB); once the model
    has been idle idle_arena_release_seconds the arena is given back, and the next request is answered
    as before. Without the setting the arena is kept (the control: the memory drop is the release's)."""
    backend = load(backend_module, "segmentation", idle_arena_release_seconds=0.3 if release else 0)
    rng = np.random.default_rng(1)
    requests = [{"image": _Tensor("image", rng.integers(0, 256, (1, 384, 256, 3), dtype=np.uint8))} for _ in range(2)]
    try:
        first = backend.execute(requests)
        busy = rss_mb(os.getpid())
        time.sleep(1.5)
        idle = rss_mb(os.getpid())
        again = backend.execute(requests)
    finally:
        backend.finalize()
    if release:
        assert busy - idle > 30, (busy, idle)
    else:
        assert abs(busy - idle) < 10, (busy, idle)
    for before, after in zip(first, again):
        assert np.array_equal(before.tensors["fashion"], after.tensors["fashion"])
