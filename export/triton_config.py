"""Writes a model's two Triton configs from its registry entry (fashionpixel/models.py: name, tensors)
and how Triton serves it (ModelSpec).

- `config.pbtxt`: CPU (KIND_CPU), what runs on this machine, as the tuning sweep chose it
  (`make bench-tune`, docs/tuning.md): ONNX Runtime threads that sleep rather than spin when out of
  work; two threads for a lone request (it runs on both cores: a segment request 85-87 → 62 ms p50)
  and, for the two networks with two instances, one thread for a batch of several requests, which
  Triton forms only when a queue has formed and both instances are busy (two batches side by side, a
  core each, as before); dynamic batching up to 2 without a delay (a lone request is not held back for
  a partner), the memory arena on and grown at start by a warm-up
  at the largest batch (memory is spent before the model is ready and stays flat under load; a smaller
  batch cap keeps that arena small), and given back once the model has been idle 5 s.
- `configs/gpu.pbtxt`: KIND_GPU with ONNX Runtime's TensorRT accelerator in FP16; selected in
  NVIDIA's container with `--model-config-name=gpu`.
Both say `backend: "onnxruntime"`, so the same repository loads with the native backend on a GPU
and with our Python-based one (runtime/backends/onnxruntime) here.
"""

from dataclasses import dataclass, field
from pathlib import Path

from fashionpixel.models import MODELS, Model


@dataclass(frozen=True)
class ModelSpec:
    model: Model  # what the network is: its name and tensors
    max_batch_size: int = 8  # the GPU's
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 2000  # the GPU's: a batch of 4-8 is worth waiting 2 ms for there
    cpu_max_batch_size: int = 2
    # no delay on the CPU: a lone request waited the whole 2 ms for a partner (Triton's statistics: 2.2 ms
    # queued per call); under load, requests queue while both instances are busy and pair up without it
    cpu_max_queue_delay_us: int = 0
    cpu_preferred_batch_sizes: tuple[int, ...] = (2,)
    cpu_instances: int = 2
    cpu_threads: int = 2
    # threads for a batch of several requests, which Triton forms only when a queue has formed (None: as
    # cpu_threads); runtime/backends/onnxruntime/model.py
    cpu_busy_threads: int | None = None
    cpu_mem_arena: bool = True
    # with the arena on: after this long without requests the arena is given back (None: kept for good);
    # runtime/backends/onnxruntime/model.py
    cpu_arena_idle_release_s: float | None = 5.0
    # ONNX Runtime's memory pattern plans one block per input shape and re-plans as batch sizes vary:
    # each instance grew ~40 MB in steps under mixed batches, for no speed (docs/tuning.md)
    cpu_mem_pattern: bool = False
    gpu_instances: int = 1
    # more backend parameters, e.g. session.*; by default ONNX Runtime's threads sleep when out of work
    # instead of spinning: two instances' spinning threads would take each other's cores
    cpu_parameters: dict[str, str] = field(default_factory=lambda: {"session.intra_op.allow_spinning": "0"})


# Every served model as Triton serves it. Each instance here is a Python backend process of its own
# (~80 MB before its arena), so only the two networks every segment and cutout request runs get the
# sweep's two instances. The rest have one: pose is small, skin and pose transfer serve endpoints that
# are slow anyway, and a crop specialist is called for some photos only. Those last three also run
# without ONNX Runtime's arena, so the memory of a run goes back when it ends (issue 23, docs/benchmarks.md:
# the whole of Triton 1.76 → 1.31 GB RSS after load).
BUSY = {"segmentation", "cutout"}
SPECS = {
    name: ModelSpec(
        model,
        cpu_instances=2 if name in BUSY else 1,
        cpu_busy_threads=1 if name in BUSY else None,  # both instances busy: a core each
        cpu_mem_arena=name in BUSY or name == "pose",
    )
    for name, model in MODELS.items()
}


def _tensors(kind: str, tensors) -> str:
    rows = [
        f'  {{\n    name: "{t.name}"\n    data_type: TYPE_{t.dtype}\n    dims: [ {", ".join(map(str, t.dims))} ]\n  }}'
        for t in tensors
    ]
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def _warmup(spec: ModelSpec, max_batch: int) -> str:
    """Warm-up requests at batch 1 and at the largest batch: with ONNX Runtime's arena on, the second
    grows the arena to all the model will ever need before the model is ready, so memory is spent at
    start, where ops can see it, and stays flat under load."""
    inputs = "".join(
        f'    inputs {{\n      key: "{t.name}"\n      value: {{\n        data_type: TYPE_{t.dtype}\n'
        f"        dims: [ {', '.join(map(str, t.dims))} ]\n        random_data: true\n      }}\n    }}\n"
        for t in spec.model.inputs
    )
    sizes = sorted({1, max_batch})
    entries = [f'  {{\n    name: "warmup_batch_{n}"\n    batch_size: {n}\n{inputs}  }}' for n in sizes]
    return "model_warmup [\n" + ",\n".join(entries) + "\n]\n"


def _parameter(key: str, value) -> str:
    return f'parameters {{\n  key: "{key}"\n  value: {{ string_value: "{value}" }}\n}}\n'


def _common(spec: ModelSpec, max_batch: int, preferred: tuple[int, ...], delay_us: int) -> str:
    sizes = ", ".join(map(str, preferred))
    return (
        f'name: "{spec.model.name}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch}\n'
        + _tensors("input", spec.model.inputs)
        + _tensors("output", spec.model.outputs)
        + f"dynamic_batching {{\n  preferred_batch_size: [ {sizes} ]\n"
        f"  max_queue_delay_microseconds: {delay_us}\n}}\n"
    )


def cpu_parameters(spec: ModelSpec) -> dict:
    return (
        {"intra_op_thread_count": spec.cpu_threads}
        | ({} if spec.cpu_busy_threads is None else {"busy_intra_op_thread_count": spec.cpu_busy_threads})
        | ({} if spec.cpu_mem_arena else {"enable_mem_arena": 0})
        | (
            {"idle_arena_release_seconds": spec.cpu_arena_idle_release_s}
            if spec.cpu_mem_arena and spec.cpu_arena_idle_release_s
            else {}
        )
        | ({} if spec.cpu_mem_pattern else {"enable_mem_pattern": 0})
        | spec.cpu_parameters
    )


def cpu_config(spec: ModelSpec) -> str:
    return (
        _common(spec, spec.cpu_max_batch_size, spec.cpu_preferred_batch_sizes, spec.cpu_max_queue_delay_us)
        + f"instance_group [\n  {{\n    count: {spec.cpu_instances}\n    kind: KIND_CPU\n  }}\n]\n"
        + "".join(_parameter(k, v) for k, v in cpu_parameters(spec).items())
        + _warmup(spec, spec.cpu_max_batch_size)
    )


def gpu_config(spec: ModelSpec) -> str:
    return (
        _common(spec, spec.max_batch_size, spec.preferred_batch_sizes, spec.max_queue_delay_us)
        + f"instance_group [\n  {{\n    count: {spec.gpu_instances}\n    kind: KIND_GPU\n  }}\n]\n"
        + "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n"
        '        name: "tensorrt"\n'
        '        parameters { key: "precision_mode" value: "FP16" }\n'
        '        parameters { key: "max_workspace_size_bytes" value: "1073741824" }\n'
        '        parameters { key: "trt_engine_cache_enable" value: "1" }\n'
        # the repository is mounted read-only: engines are cached in the container's /tmp
        '        parameters { key: "trt_engine_cache_path" value: "/tmp/triton-trt-cache" }\n'
        "      }\n    ]\n  }\n}\n" + _warmup(spec, spec.max_batch_size)
    )


def write_configs(spec: ModelSpec, repository: Path) -> Path:
    model_dir = repository / spec.model.name
    (model_dir / "configs").mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(cpu_config(spec))
    (model_dir / "configs" / "gpu.pbtxt").write_text(gpu_config(spec))
    return model_dir
