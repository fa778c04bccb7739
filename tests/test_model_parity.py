"""The served model: Triton's answer equals ONNX Runtime's in-process answer (stated tolerance)."""
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient

from export.export_segmentation import PARITY_ATOL
from fashionpixel.segmentation import prepare
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_triton_matches_onnxruntime(stack, photo):
    canvas, _ = prepare(photo)
    batch = np.stack([canvas, canvas[:, ::-1].copy()])
    session = ort.InferenceSession(str(REPO / "model_repository/segmentation/1/model.onnx"))
    expected = session.run(["person", "fashion"], {"image": batch})
    client = httpclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_http}")
    inp = httpclient.InferInput("image", list(batch.shape), "UINT8")
    inp.set_data_from_numpy(batch)
    result = client.infer("segmentation", [inp])
    for name, want in zip(["person", "fashion"], expected):
        got = result.as_numpy(name)
        assert got.shape == want.shape
        assert np.abs(got.astype(np.float32) - want.astype(np.float32)).max() <= PARITY_ATOL


def test_model_config_is_what_the_exporter_writes():
    from export.export_segmentation import SPEC
    from export.triton_config import cpu_config, gpu_config
    model_dir = REPO / "model_repository" / "segmentation"
    assert (model_dir / "config.pbtxt").read_text() == cpu_config(SPEC)
    assert (model_dir / "configs" / "gpu.pbtxt").read_text() == gpu_config(SPEC)
    gpu = gpu_config(SPEC)
    assert "KIND_GPU" in gpu and 'name: "tensorrt"' in gpu and "FP16" in gpu
    assert "dynamic_batching" in cpu_config(SPEC) and "KIND_CPU" in cpu_config(SPEC)


def test_several_inputs_pass_through_triton_unchanged(stack):
    """pose_transfer has four inputs: Triton (dynamic batching, our onnxruntime backend) must give what
    ONNX Runtime gives in-process for the same batch."""
    from export.export_pose_transfer import PARITY_ATOL as ATOL, SPEC
    rng = np.random.default_rng(0)
    batch = {t.name: rng.integers(0, 8 if t.name == "parts" else 256, (2, *t.dims), dtype=np.uint8) for t in SPEC.inputs}
    session = ort.InferenceSession(str(REPO / "model_repository/pose_transfer/1/model.onnx"))
    (want,) = session.run(["image"], batch)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_http}")
    inputs = []
    for name, array in batch.items():
        inputs.append(httpclient.InferInput(name, list(array.shape), "UINT8"))
        inputs[-1].set_data_from_numpy(array)
    got = client.infer("pose_transfer", inputs).as_numpy("image")
    assert got.shape == want.shape == (2, *SPEC.outputs[0].dims)
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= ATOL
