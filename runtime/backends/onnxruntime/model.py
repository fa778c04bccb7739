"""A Python-based Triton backend named "onnxruntime", for Triton builds that lack the native one.

The Triton bundled in nvidia-pytriton has only the Python backend. Triton loads a folder
`backends/<name>/model.py` as a backend of that name, so with this file the repository's unchanged
`backend: "onnxruntime"` configs load here, while NVIDIA's container serves them with its native
ONNX Runtime backend (CUDA / TensorRT). It honours the native backend's parameters of the same names:
`intra_op_thread_count`, `inter_op_thread_count`, `execution_mode`, `enable_mem_arena`,
`enable_mem_pattern` and `memory.enable_memory_arena_shrinkage` (e.g. "cpu:0": after every run the
arena gives back what that run grew it by). Parameters named `session.*` go to ONNX Runtime as session
config entries (e.g. `session.intra_op.allow_spinning`); the native backend ignores them.

With dynamic batching Triton hands `execute` several requests at once: their inputs are concatenated
along the batch axis, run as one batch, and the outputs split back per request.

`busy_intra_op_thread_count` (ours; the native backend ignores it): the threads for a batch of more
than one request. A lone request then runs on every thread `intra_op_thread_count` gives it, while
under load, when Triton's queue forms batches and every instance is busy, each instance takes one core
instead of all instances fighting over them (docs/tuning.md). It is a second session of the same model
that shares the first one's memory arena (ONNX Runtime's environment allocator): ~9 MB more, not a
second arena.

`idle_arena_release_seconds` (ours; the native backend ignores it): once the model has been idle that
long, the arena is given back. ONNX Runtime's arena keeps the largest batch's buffers for good, and
without it every run maps its ~100 MB of activations afresh (a fifth of the throughput, docs/tuning.md).
So the arena stays while requests come, and a thread, when they stop, runs one batch-1 request of zeros
with ONNX Runtime's arena shrinkage, which frees every chunk no run is using (`_release_when_idle`).
The first request after a quiet spell maps its buffers again (~+20 ms once).
"""

import json
import os
import threading
import time

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_thread_count", "0") or 0)
        options.inter_op_num_threads = int(params.get("inter_op_thread_count", "0") or 0)
        if params.get("execution_mode") == "1":
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.enable_cpu_mem_arena = params.get("enable_mem_arena", "1") not in ("0", "false")
        options.enable_mem_pattern = params.get("enable_mem_pattern", "1") not in ("0", "false")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for key, value in params.items():  # ONNX Runtime's session config keys, e.g. session.intra_op.allow_spinning
            if key.startswith("session."):
                options.add_session_config_entry(key, value)
        busy = int(params.get("busy_intra_op_thread_count", "0") or 0)
        two_sessions = busy not in (0, options.intra_op_num_threads)
        if two_sessions and options.enable_cpu_mem_arena:  # one arena for both
            ort.create_and_register_allocator(
                ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT), None
            )
            options.add_session_config_entry("session.use_env_allocators", "1")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.busy_session = self.session
        if two_sessions:
            options.intra_op_num_threads = busy
            self.busy_session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.run_options = ort.RunOptions()
        shrink = params.get("memory.enable_memory_arena_shrinkage", "")
        if shrink and options.enable_cpu_mem_arena:
            self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", shrink)
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]
        self.lock = threading.Lock()  # a release never runs beside a request
        self.last_run = None  # monotonic time of the last run whose buffers the arena still holds
        self.stopped = threading.Event()
        idle_seconds = float(params.get("idle_arena_release_seconds", "0") or 0)
        if idle_seconds > 0 and options.enable_cpu_mem_arena:
            self.release_feed = {
                i["name"]: np.zeros([1, *map(int, i["dims"])], pb_utils.triton_string_to_numpy(i["data_type"]))
                for i in config["input"]
            }
            self.release_options = ort.RunOptions()
            self.release_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            threading.Thread(target=self._release_when_idle, args=(idle_seconds,), daemon=True).start()

    def _release_when_idle(self, idle_seconds: float):
        while not self.stopped.wait(idle_seconds / 2):
            with self.lock:
                if self.last_run is not None and time.monotonic() - self.last_run >= idle_seconds:
                    self.session.run(self.output_names, self.release_feed, self.release_options)
                    self.last_run = None

    def execute(self, requests):
        try:
            batches = {
                name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                for name in self.input_names
            }
            sizes = [a.shape[0] for a in batches[self.input_names[0]]]
            feed = {name: np.concatenate(parts) for name, parts in batches.items()}
            session = self.session if len(requests) == 1 else self.busy_session
            with self.lock:
                outputs = session.run(self.output_names, feed, self.run_options)
                self.last_run = time.monotonic()
        except Exception as exc:  # one bad batch must not take the model down
            error = pb_utils.TritonError(f"onnxruntime: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        cuts = np.cumsum(sizes)[:-1]
        per_output = [np.split(out, cuts) for out in outputs]
        return [
            pb_utils.InferenceResponse(
                [
                    pb_utils.Tensor(name, np.ascontiguousarray(parts[i]))
                    for name, parts in zip(self.output_names, per_output)
                ]
            )
            for i in range(len(requests))
        ]

    def finalize(self):
        self.stopped.set()
