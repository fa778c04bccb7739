"""The served model: Triton's answer equals ONNX Runtime's in-process answer (stated tolerance)."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient

from export.export_segmentation import PARITY_ATOL
from export.triton_config import SPECS, cpu_config, gpu_config
from fashionpixel.models import POSE_TRANSFER, SEGMENTATION
from fashionpixel.segmentation import prepare
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_triton_matches_onnxruntime(stack, photo):
    canvas, _ = prepare(photo)
    batch = np.stack([canvas, canvas[:, ::-1].copy()])
    session = ort.InferenceSession(str(REPO / "model_repository/segmentation/1/model.onnx"))
    names = list(SEGMENTATION.output_names)  # the probabilities and the routing head's answer
    expected = session.run(names, {"image": batch})
    client = httpclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_http}")
    inp = httpclient.InferInput("image", list(batch.shape), "UINT8")
    inp.set_data_from_numpy(batch)
    result = client.infer("segmentation", [inp])
    for name, want in zip(names, expected):
        got = result.as_numpy(name)
        assert got.shape == want.shape
        assert np.abs(got.astype(np.float32) - want.astype(np.float32)).max() <= PARITY_ATOL


def test_triton_pairs_queued_requests_without_a_batching_delay(stack):
    """The CPU configs have no batching delay, yet Triton still batches: requests that queue while both
    segmentation instances are busy run in pairs (its statistics count executions by batch size)."""
    client = httpclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_http}", concurrency=16)

    def executions() -> dict[int, int]:
        stats = client.get_inference_statistics("segmentation")["model_stats"][0]["batch_stats"]
        return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats}

    canvas = np.zeros((1, *SPECS["segmentation"].model.inputs[0].dims), np.uint8)
    inp = httpclient.InferInput("image", list(canvas.shape), "UINT8")
    inp.set_data_from_numpy(canvas)
    before = executions()
    pending = [client.async_infer("segmentation", [inp]) for _ in range(16)]
    assert all(p.get_result().as_numpy("person").shape[0] == 1 for p in pending)
    after = executions()
    paired = after.get(2, 0) - before.get(2, 0)
    alone = after.get(1, 0) - before.get(1, 0)
    assert paired >= 1 and 2 * paired + alone == 16, (before, after)


@pytest.mark.parametrize("model", sorted(SPECS))
def test_model_config_is_what_the_exporter_writes(model):
    spec = SPECS[model]
    model_dir = REPO / "model_repository" / model
    assert (model_dir / "config.pbtxt").read_text() == cpu_config(spec)
    assert (model_dir / "configs" / "gpu.pbtxt").read_text() == gpu_config(spec)
    gpu, cpu = gpu_config(spec), cpu_config(spec)
    assert "KIND_GPU" in gpu and 'name: "tensorrt"' in gpu and "FP16" in gpu
    assert "dynamic_batching" in cpu and "KIND_CPU" in cpu
    # the sweep's choice on the CPU (docs/tuning.md): 2 threads that do not spin; 2 instances for the networks every
    # segment and cutout request runs, 1 for the others (issue 23: each instance is a process), batches
    # ≤ 2; the arena on and grown at start by a warm-up at the largest batch, so memory is flat under
    # load, except where a model's run should give its memory back (called for some requests only)
    busy = model in ("segmentation", "cutout")
    assert "max_batch_size: 2\n" in cpu and f"count: {2 if busy else 1}\n" in cpu
    assert ("enable_mem_arena" in cpu) == (model not in ("segmentation", "cutout", "pose"))
    assert 'key: "intra_op_thread_count"\n  value: { string_value: "2" }' in cpu
    assert 'key: "session.intra_op.allow_spinning"\n  value: { string_value: "0" }' in cpu
    # ... and one thread each for a batch of several requests, when both instances are busy
    assert ('key: "busy_intra_op_thread_count"\n  value: { string_value: "1" }' in cpu) == busy
    assert 'key: "enable_mem_pattern"\n  value: { string_value: "0" }' in cpu
    assert "batch_size: 2\n" in cpu and "batch_size: 8\n" in gpu and "max_batch_size: 8\n" in gpu
    # no lone request is held back for a partner on the CPU (test_triton_pairs_queued_requests...); the GPU waits
    assert "max_queue_delay_microseconds: 0\n" in cpu and "max_queue_delay_microseconds: 2000\n" in gpu


def test_triton_runs_with_jemalloc():
    """`make up`/`make test` install Debian's libjemalloc2; Triton's memory stays flat with it."""
    from runtime.triton import JEMALLOC, environment

    assert JEMALLOC.exists(), "libjemalloc2 is missing: `make system-deps` installs it"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LD_PRELOAD", raising=False)
        assert environment()["LD_PRELOAD"] == str(JEMALLOC)
        mp.setenv("LD_PRELOAD", "")  # an explicit empty value turns it off
        assert environment()["LD_PRELOAD"] == ""


def test_triton_and_its_backends_purge_freed_memory_while_idle(stack):
    """jemalloc's background thread (runtime/triton.py: JEMALLOC_CONF) runs in Triton and in every backend
    process, so the pages a burst freed go back to the system without another allocation."""
    from runtime.stack import descendants

    pids = {stack.triton.pid} | descendants(stack.triton.pid)
    assert len(pids) > 1, "Triton has no backend processes"
    without = [
        p
        for p in pids
        if "jemalloc_bg_thd" not in {t.read_text().strip() for t in Path(f"/proc/{p}/task").glob("*/comm")}
    ]
    assert without == [], f"no jemalloc background thread in {without}"


def test_several_inputs_pass_through_triton_unchanged(stack):
    """pose_transfer has four inputs: Triton (dynamic batching, our onnxruntime backend) must give what
    ONNX Runtime gives in-process for the same batch."""
    from export.export_pose_transfer import PARITY_ATOL as ATOL

    rng = np.random.default_rng(0)
    batch = {
        t.name: rng.integers(0, 8 if t.name == "parts" else 256, (2, *t.dims), dtype=np.uint8)
        for t in POSE_TRANSFER.inputs
    }
    session = ort.InferenceSession(str(REPO / "model_repository/pose_transfer/1/model.onnx"))
    (want,) = session.run(["image"], batch)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{stack.ports.triton_http}")
    inputs = []
    for name, array in batch.items():
        inputs.append(httpclient.InferInput(name, list(array.shape), "UINT8"))
        inputs[-1].set_data_from_numpy(array)
    got = client.infer("pose_transfer", inputs).as_numpy("image")
    assert got.shape == want.shape == (2, *POSE_TRANSFER.outputs[0].dims)
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= ATOL
