"""Where a request's time goes, beyond the network (issue 23): `make bench-anatomy`.

    python -m bench.anatomy [--requests 200]

1. The Triton trip: the cutout network and a null model with the same inputs and outputs (a cast, a
   transpose and a copy: no network) called one after another through the services' own client
   (shared memory): wall time per call, and CPU per call in Triton (with its backend processes) and in
   the caller. The null model's trip is what Triton and our Python backend add to any call.
2. Each service thread's CPU per request, sequential requests from a client that costs next to nothing
   (a pre-built multipart body over one kept-alive connection): the event loop (HTTP, the framework,
   the gRPC client), the CPU workers (the stages of Server-Timing), any native helper threads.
3. The benchmark's own load generator (httpx, as `make bench` runs it): its CPU per request, which the
   two cores share with the stack it measures.
"""

import argparse
import asyncio
import http.client
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper

from bench.common import ENDPOINTS, load, photo, repository_copy
from bench.run import onnx_floor
from fashionpixel.models import CUTOUT, Model
from runtime.stack import Ports, Stack, descendants
from services.catalog import SERVICES
from services.common.settings import Settings
from services.common.triton import Triton

NULL = Model("cutout_null", CUTOUT.canvas, CUTOUT.inputs, CUTOUT.outputs)
ROWS = ("segment fashion, post-processing off", "cutout all, first pass only, no refinement")


def write_null_model(path: Path) -> None:
    """The cutout's I/O (uint8 N×384×256×3 → fp16 N×5×384×256) with no network in between."""
    (c, h, w) = CUTOUT.outputs[0].dims
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT16),
        helper.make_node("Transpose", ["pixels"], ["planes"], perm=[0, 3, 1, 2]),
        helper.make_node("Slice", ["planes", "start", "end", "axis"], ["more"]),
        helper.make_node("Concat", ["planes", "more"], ["garment"], axis=1),
    ]
    constants = [
        helper.make_tensor("start", TensorProto.INT64, [1], [0]),
        helper.make_tensor("end", TensorProto.INT64, [1], [c - 3]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        nodes,
        "null",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", h, w, 3])],
        [helper.make_tensor_value_info("garment", TensorProto.FLOAT16, ["N", c, h, w])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _cpu(stat: Path) -> float:
    """User + system CPU seconds from a /proc stat file (0 for a process or thread that is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: set[int]) -> float:
    """CPU of these processes so far."""
    return sum(_cpu(Path(f"/proc/{pid}/stat")) for pid in pids)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process."""
    return {int(tid): _cpu(Path(f"/proc/{pid}/task/{tid}/stat")) for tid in os.listdir(f"/proc/{pid}/task")}


def trips(url: str, triton_pid: int, calls: int, rounds: int = 4) -> list[dict]:
    """The real cutout network and the null model, alternated in blocks."""
    image = np.random.default_rng(0).integers(0, 255, CUTOUT.inputs[0].dims, dtype=np.uint8)

    async def run() -> list[dict]:
        triton = Triton(Settings(triton_grpc_url=url))
        stats = {m.name: {"wall": [], "server": 0.0, "client": 0.0} for m in (CUTOUT, NULL)}
        try:
            for model in (CUTOUT, NULL):
                for _ in range(10):
                    await triton.run(model, {"image": image})
            for _ in range(rounds):
                for model in (CUTOUT, NULL):
                    s = stats[model.name]
                    pids = descendants(triton_pid) | {triton_pid}
                    server, client = cpu_seconds(pids), time.process_time()
                    for _ in range(calls // rounds):
                        start = time.perf_counter()
                        await triton.run(model, {"image": image})
                        s["wall"].append((time.perf_counter() - start) * 1000)
                    s["server"] += cpu_seconds(pids) - server
                    s["client"] += time.process_time() - client
        finally:
            await triton.close()
        return [
            {
                "model": name,
                "p50": statistics.median(s["wall"]),
                "server_cpu": s["server"] / len(s["wall"]) * 1000,
                "client_cpu": s["client"] / len(s["wall"]) * 1000,
            }
            for name, s in stats.items()
        ]

    return asyncio.run(run())


def service_threads(stack: Stack, row: tuple, requests: int) -> tuple[float, list[tuple[str, float]]]:
    """(client p50 ms, [(thread, CPU ms per request)]) for sequential requests of one row."""
    name, service, path, query, fields = row
    body = photo()
    # the body as make bench's load generator sends it (bench.common.load), encoded once by httpx
    request = httpx.Request(
        "POST",
        stack.service_url(service) + path,
        params=query,
        files={f: (f"{f}.jpg", body, "image/jpeg") for f in fields},
    )
    data, target = request.read(), request.url.raw_path.decode()
    headers = {"Content-Type": request.headers["content-type"]}
    connection = http.client.HTTPConnection(request.url.host, request.url.port)

    def one() -> float:
        start = time.perf_counter()
        connection.request("POST", target, data, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{name}: HTTP {response.status}")
        return (time.perf_counter() - start) * 1000

    for _ in range(20):
        one()
    pid = stack.services[service].pid
    before = thread_cpu(pid)
    walls = [one() for _ in range(requests)]
    after = thread_cpu(pid)
    connection.close()
    per_thread = sorted(
        ((after[t] - before.get(t, 0.0)) / requests * 1000, t) for t in after if after[t] - before.get(t, 0.0) > 0
    )[::-1]
    return statistics.median(walls), [(thread_label(pid, t), ms) for ms, t in per_thread]


def thread_label(pid: int, tid: int) -> str:
    """The event loop runs on the main thread (tid = pid). Python does not name the others for the OS:
    they are the CPU workers (the stages of Server-Timing), gRPC's poller and native helpers."""
    return "event loop (main thread)" if tid == pid else f"thread {tid - pid:+d}"


def load_generator_cpu(stack: Stack, row: tuple, clients: int, seconds: float) -> tuple[float, float]:
    """(req/s, the load generator's CPU ms per request) for `make bench`'s own client."""
    _, service, path, query, fields = row
    url, body = stack.service_url(service) + path, photo()
    asyncio.run(load(url, query, body, fields, 2, 2))
    cpu = time.process_time()
    result = asyncio.run(load(url, query, body, fields, clients, seconds))
    return result["rps"], (time.process_time() - cpu) / result["n"] * 1000


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200, help="sequential requests (and Triton calls) per row")
    ap.add_argument("--seconds", type=float, default=12, help="the load generator's run at 8 clients")
    args = ap.parse_args(argv)
    rows = [e for e in ENDPOINTS if e[0] in ROWS]
    with tempfile.TemporaryDirectory() as tmp:
        repository = repository_copy(Path(tmp))
        (repository / NULL.name / "1").mkdir(parents=True)
        write_null_model(repository / NULL.name / "1" / "model.onnx")
        config = (repository / CUTOUT.name / "config.pbtxt").read_text()
        (repository / NULL.name / "config.pbtxt").write_text(config.replace(f'"{CUTOUT.name}"', f'"{NULL.name}"', 1))
        floors = {
            m.name: onnx_floor(m.name, batches=(1,), path=repository / m.name / "1" / "model.onnx")["ms"]
            for m in (CUTOUT, NULL)
        }
        stack = Stack(Ports.free(), repository=repository, log_dir=Path(tmp) / "logs", env={"HOME": tmp})
        try:
            stack.start(timeout=180, services=tuple(s for s in SERVICES if s.name in {r[1] for r in rows}))
            print("One call through Triton, sequential (`Triton.run`, shared memory):\n")
            print(
                "| model | in-process ms, 2 threads (make bench's floor) | Triton trip p50 ms | Triton CPU ms/call | caller CPU ms/call |"
            )
            print("|---|---|---|---|---|")
            for t in trips(f"127.0.0.1:{stack.ports.triton_grpc}", stack.triton.pid, args.requests):
                print(
                    f"| {t['model']} | {floors[t['model']]:.1f} | {t['p50']:.1f} | {t['server_cpu']:.1f} | {t['client_cpu']:.1f} |"
                )
            for row in rows:
                p50, threads = service_threads(stack, row, args.requests)
                rps, generator = load_generator_cpu(stack, row, 8, args.seconds)
                print(f"\n{row[0]}: p50 {p50:.1f} ms at one client; the service's CPU per request by thread:\n")
                print("| thread | CPU ms per request |\n|---|---|")
                for label, ms in threads:
                    if ms >= 0.05:
                        print(f"| {label} | {ms:.2f} |")
                print(f"| **the service** | **{sum(ms for _, ms in threads):.1f}** |")
                print(
                    f"\n`make bench`'s load generator at 8 clients: {rps:.1f} req/s, {generator:.1f} ms of its own CPU per request."
                )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
