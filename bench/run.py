"""`make bench`: latency p50/p95/p99 and throughput of every endpoint at 1, 4 and 16 concurrent
clients, the per-stage breakdown from Server-Timing, and the same model in-process with ONNX Runtime
as the floor. Starts its own stack on free ports; writes docs/benchmarks.md.

    python -m bench.run [--seconds 15] [--concurrency 1 4 16] [--out docs/benchmarks.md]
"""

import argparse
import asyncio
import datetime
import platform
import statistics
import time
from pathlib import Path

import httpx
import numpy as np

from export.onnxruntime_session import onnx_session
from fashionpixel.models import MODELS
from runtime.stack import Ports, Stack, tree_mb
from tests.images import encode

REPO = Path(__file__).resolve().parent.parent
GENERATED_END = "<!-- make bench writes everything above this line; below is kept -->"
REMBG_SECTION = "## Our cutout against rembg"  # written by bench/rembg_compare.py


def photo() -> bytes:
    from training.datasets import DATA_DIR

    path = DATA_DIR / "fashionista" / "images" / "0001.jpg"
    if path.exists():
        return path.read_bytes()
    from tests.images import synthetic_photo

    return encode(synthetic_photo(400, 600), quality=90)


# (name, service, path, query, the file fields that get the photo) — one row per endpoint variant.
IMAGE = ("image",)
ENDPOINTS = [
    (
        "segment fashion, post-processing off",
        "segmentation",
        "/v1/segment",
        {"crf": "false", "min_region": "0", "superpixels": "false"},
        IMAGE,
    ),
    ("segment fashion, defaults", "segmentation", "/v1/segment", {}, IMAGE),
    ("segment person, defaults", "segmentation", "/v1/segment", {"task": "person"}, IMAGE),
    ("cutout all, defaults (guided filter)", "cutout", "/v1/cutout", {}, IMAGE),
    ("cutout all, focus pass + guided filter", "cutout", "/v1/cutout", {"focus": "true"}, IMAGE),
    ("cutout all, first pass only, no refinement", "cutout", "/v1/cutout", {"focus": "false", "refine": "none"}, IMAGE),
    ("skin from a photo", "skin-generation", "/v1/skin", {}, IMAGE),
    ("pose", "pose-transfer", "/v1/pose", {}, IMAGE),
    ("pose transfer, target photo", "pose-transfer", "/v1/pose-transfer", {}, ("source", "target")),
]


def parse_server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


async def load(
    url: str, query: dict, body: bytes, fields: tuple[str, ...], clients: int, seconds: float, data: dict | None = None
) -> dict:
    """`clients` concurrent loops posting `body` in each file field of `fields` (and form `data`)."""
    latencies, stages, errors = [], [], 0
    files = {f: (f"{f}.jpg", body, "image/jpeg") for f in fields}
    deadline = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient):
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            r = await c.post(url, params=query, files=files, data=data)
            latencies.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200:
                errors += 1
            else:
                stages.append(parse_server_timing(r.headers.get("server-timing", "")))

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as c:
        await c.post(url, params=query, files=files, data=data)  # warm
        begin = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    q = np.percentile(latencies, [50, 95, 99])
    names = sorted({k for s in stages for k in s})
    return {
        "n": len(latencies),
        "errors": errors,
        "p50": q[0],
        "p95": q[1],
        "p99": q[2],
        "rps": len(latencies) / elapsed,
        "stages": {k: statistics.median(s.get(k, 0.0) for s in stages) for k in names},
    }


def stack_memory(stack: Stack) -> dict[str, tuple[float, float]]:
    """(RSS, PSS) in MB per process, Triton with its backend processes."""
    pids = {"triton": stack.triton.pid} | {n: p.pid for n, p in stack.services.items()}
    return {name: tree_mb(pid) for name, pid in pids.items()}


def onnx_floor(model: str, runs: int = 30) -> float:
    path = REPO / "model_repository" / model / "1" / "model.onnx"
    session = onnx_session(path, threads=2)
    rng = np.random.default_rng(0)
    x = {i.name: rng.integers(0, 255, [1, *i.shape[1:]], dtype=np.uint8) for i in session.get_inputs()}
    session.run(None, x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, x)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    import tempfile

    stack = Stack(Ports.free(), log_dir=REPO / "test-artifacts" / "logs" / "bench", env={"HOME": tempfile.mkdtemp()})
    body = photo()
    rows = []
    try:
        stack.start(timeout=180)
        memory = {"idle": stack_memory(stack)}
        for name, service, path, query, fields in ENDPOINTS:
            for clients in args.concurrency:
                r = asyncio.run(load(stack.service_url(service) + path, query, body, fields, clients, args.seconds))
                rows.append((name, clients, r))
                print(
                    f"{name:<40} c={clients:<3} p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f}  p99 {r['p99']:7.1f}  "
                    f"{r['rps']:6.1f} req/s  errors {r['errors']}  stages {r['stages']}",
                    flush=True,
                )
        time.sleep(12)  # idle again: jemalloc hands freed pages back after ~10 s, the services after IDLE_TRIM_S
        memory["after"] = stack_memory(stack)
    finally:
        stack.stop()
    floors = {m: onnx_floor(m) for m in MODELS}
    write_report(args.out, rows, floors, memory, args.seconds)
    print(f"wrote {args.out}")


def plot(rows, path: Path) -> None:
    """p50 latency and throughput against clients, one line per endpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in dict.fromkeys(n for n, _, _ in rows):
        pts = [(c, r) for n, c, r in rows if n == name]
        lat.plot([c for c, _ in pts], [r["p50"] for _, r in pts], marker="o", label=name)
        thr.plot([c for c, _ in pts], [r["rps"] for _, r in pts], marker="o", label=name)
    for ax, title in ((lat, "p50 latency (ms)"), (thr, "throughput (req/s)")):
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    lat.set_yscale("log")
    thr.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, rows, floors: dict, memory: dict, seconds: float) -> None:
    import onnxruntime
    import tritonclient

    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today()} with `make bench` (`python -m bench.run`), {seconds:.0f} s per row, "
        "on this machine: "
        + f"{platform.processor() or platform.machine()}, 2 cores, Python {platform.python_version()}, "
        f"Triton 2.51 (CPU, our Python onnxruntime backend), onnxruntime {onnxruntime.__version__}, "
        f"tritonclient {tritonclient.__version__ if hasattr(tritonclient, '__version__') else '2.50'}. "
        "Input: a 400×600 JPEG (Fashionista 0001). Latency is the client's, end to end over HTTP on loopback; "
        "stages are the service's Server-Timing medians.",
        "",
        "| endpoint | clients | p50 ms | p95 ms | p99 ms | req/s | errors | decode | preprocess | infer | postprocess | encode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, clients, r in rows:
        s = r["stages"]
        lines.append(
            f"| {name} | {clients} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['rps']:.1f} | {r['errors']} | "
            + " | ".join(f"{s.get(k, 0):.1f}" for k in ("decode", "preprocess", "infer", "postprocess", "encode"))
            + " |"
        )
    plot(rows, out.parent / "img" / "benchmarks.png")
    lines += ["", "![p50 latency and throughput by clients](img/benchmarks.png)"]
    lines += [
        "",
        "Floor: the same ONNX model in-process with ONNX Runtime (2 threads, batch 1), median of 30 runs:",
        "",
    ]
    lines += [f"- {m}: {ms:.1f} ms" for m, ms in floors.items()]
    lines += [
        "",
        "Memory in MB (Triton includes its backend processes), idle after start and idle again 12 s after all rows. RSS "
        "counts the memory Triton shares with its backend processes once per process; PSS splits it:",
        "",
        "| process | RSS idle | RSS after | PSS idle | PSS after |",
        "|---|---|---|---|---|",
    ]
    totals = {m: [sum(v[i] for v in memory[m].values()) for i in (0, 1)] for m in ("idle", "after")}
    for name, (idle, after) in [(n, (memory["idle"][n], memory["after"][n])) for n in memory["idle"]] + [
        ("total", (totals["idle"], totals["after"]))
    ]:
        lines.append(f"| {name} | {idle[0]:.0f} | {after[0]:.0f} | {idle[1]:.0f} | {after[1]:.0f} |")
    # everything below the marker (notes written by hand, `make bench-rembg`'s section) is kept
    kept = out.read_text().partition(GENERATED_END)[2] if out.exists() else "\n"
    out.write_text("\n".join(lines) + "\n\n" + GENERATED_END + kept)


if __name__ == "__main__":
    main()
