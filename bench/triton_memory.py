"""Triton's memory under load, per ONNX Runtime memory setting: does it come back down after a burst?

    python -m bench.triton_memory                                   # the repository as committed
    python -m bench.triton_memory --param enable_mem_arena=0        # a variant, on a temporary copy
    python -m bench.triton_memory --param memory.enable_memory_arena_shrinkage=cpu:0
    python -m bench.triton_memory --env MALLOC_MMAP_THRESHOLD_=1048576     # Triton's environment
    python -m bench.triton_memory --rounds 2 --processes            # and every backend process's share

Starts Triton alone on free ports with a copy of model_repository/ whose configs get the given
`parameters` (the native ONNX Runtime backend's names, which ours honours), then sends every model
`--clients` concurrent requests (dynamic batching makes full batches) for several rounds and
prints Triton's memory after start, after each round, and a while after the last. Memory is RSS and
PSS of Triton and its backend processes together: they share the tensors' shared-memory pool, which
RSS counts once per process and PSS splits between them.
"""

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from bench.common import repository_copy
from runtime.stack import Ports, Stack, memory_table, tree_mb

TYPES = {"TYPE_UINT8": ("UINT8", np.uint8), "TYPE_FP32": ("FP32", np.float32)}


def model_inputs(client: grpcclient.InferenceServerClient, model: str) -> list[grpcclient.InferInput]:
    config = client.get_model_config(model, as_json=True)["config"]
    rng = np.random.default_rng(0)
    inputs = []
    for spec in config["input"]:
        dtype, np_type = TYPES[spec["data_type"]]
        dims = [1, *map(int, spec["dims"])]
        data = rng.integers(0, 8 if spec["name"] == "parts" else 256, dims).astype(np_type)
        inp = grpcclient.InferInput(spec["name"], dims, dtype)
        inp.set_data_from_numpy(data)
        inputs.append(inp)
    return inputs


def burst(url: str, models: list[str], clients: int, requests: int) -> float:
    """Every model, `clients` at a time, `requests` each; returns the seconds it took."""
    start = time.monotonic()

    def one_client(model: str) -> None:
        client = grpcclient.InferenceServerClient(url)
        inputs = model_inputs(client, model)
        for _ in range(requests):
            client.infer(model, inputs)

    for model in models:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one_client, [model] * clients))
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE added to every model's CPU parameters")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE in Triton's environment")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=3, help="per client and round")
    ap.add_argument("--settle", type=float, default=10, help="seconds to wait after the last round")
    ap.add_argument("--processes", action="store_true", help="also list every backend process at the end")
    args = ap.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    env = dict(e.split("=", 1) for e in args.env)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            Ports.free(),
            repository=repository_copy(Path(tmp), cpu_parameters=params),
            log_dir=Path(tmp) / "logs",
            env=env,
        )
        try:
            stack.start(services=())
            url = f"127.0.0.1:{stack.ports.triton_grpc}"
            models = [
                m["name"]
                for m in grpcclient.InferenceServerClient(url).get_model_repository_index(as_json=True)["models"]
            ]
            print(
                f"parameters {params or '(as committed)'}; environment {env or '(as started)'}; models {', '.join(models)}"
            )
            print("| moment | RSS MB | PSS MB | burst s |\n|---|---|---|---|")
            print("| idle | %.0f | %.0f | |" % tree_mb(stack.triton.pid))
            for r in range(1, args.rounds + 1):
                took = burst(url, models, args.clients, args.requests)
                print("| after round %d | %.0f | %.0f | %.1f |" % (r, *tree_mb(stack.triton.pid), took), flush=True)
            time.sleep(args.settle)
            print("| %g s later | %.0f | %.0f | |" % (args.settle, *tree_mb(stack.triton.pid)))
            if args.processes:
                print(memory_table({"tritonserver": stack.triton.pid}))
        finally:
            stack.stop_triton()
            shutil.rmtree(Path(tmp) / "logs", ignore_errors=True)


if __name__ == "__main__":
    main()
