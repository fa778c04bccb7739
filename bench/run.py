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

import numpy as np

from bench.common import ENDPOINTS, load, photo
from export.onnxruntime_session import onnx_session
from fashionpixel.models import MODELS
from runtime.stack import Ports, Stack, tree_mb

REPO = Path(__file__).resolve().parent.parent
GENERATED_END = "<!-- make bench writes everything above this line; below is kept -->"


def stack_memory(stack: Stack) -> dict[str, tuple[float, float]]:
    """(RSS, PSS) in MB per process, Triton with its backend processes."""
    pids = {"triton": stack.triton.pid} | {n: p.pid for n, p in stack.services.items()}
    return {name: tree_mb(pid) for name, pid in pids.items()}


def onnx_floor(
    model: str, runs: int = 30, batches: tuple[int, ...] = (1, 2, 4, 8), rounds: int = 3, path: Path | None = None
) -> dict:
    """The model in-process with ONNX Runtime, 2 threads: the median ms of batch 1, and the best
    throughput (images/s) over `batches` with the batch that reaches it: what this machine can do.
    Each batch's median is the lowest of `rounds` rounds: one busy moment on this shared VM put the floor
    at 28.4 ms where 20 minutes earlier it was 21.8, which made every ratio look better than it was."""
    path = path or REPO / "model_repository" / model / "1" / "model.onnx"
    session = onnx_session(path, threads=2)
    rng = np.random.default_rng(0)
    inputs = session.get_inputs()
    feeds = {n: {i.name: rng.integers(0, 255, [n, *i.shape[1:]], dtype=np.uint8) for i in inputs} for n in batches}
    medians = {n: float("inf") for n in batches}
    for _ in range(rounds):
        for n, x in feeds.items():
            session.run(None, x)
            times = []
            for _ in range(runs if n == 1 else max(5, runs // n)):
                start = time.perf_counter()
                session.run(None, x)
                times.append((time.perf_counter() - start) * 1000)
            medians[n] = min(medians[n], statistics.median(times))
    best = max(batches, key=lambda n: n / medians[n])
    return {"ms": medians[1], "best_batch": best, "images_per_s": 1000 * best / medians[best]}


# The rows issue 23 holds against the floor: (row, clients, the model whose floor it is)
AGAINST_FLOOR = [
    ("segment fashion, post-processing off", "segmentation"),
    ("segment fashion, defaults", "segmentation"),
    ("cutout all, first pass only, no refinement", "cutout"),
    ("cutout all, defaults (guided filter)", "cutout"),
]


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
        "Floor: the same ONNX model in-process with ONNX Runtime (2 threads): batch 1, median of 30 runs, and the "
        "best throughput over batches 1, 2, 4 and 8; each the best of three rounds (the fastest this machine "
        "managed, so the ratios below are the strict ones):",
        "",
        "| model | batch 1 ms | best images/s | at batch |",
        "|---|---|---|---|",
    ]
    lines += [f"| {m} | {f['ms']:.1f} | {f['images_per_s']:.1f} | {f['best_batch']} |" for m, f in floors.items()]
    by_row = {(n, c): r for n, c, r in rows}
    lines += [
        "",
        "Against the floor (issue 23): p50 at one client over the batch-1 floor, and throughput at 8 clients over "
        "the best in-process throughput:",
        "",
        "| endpoint | p50 / floor, 1 client | req/s at 8 / best images/s |",
        "|---|---|---|",
    ]
    for name, model in AGAINST_FLOOR:
        one, eight, f = by_row.get((name, 1)), by_row.get((name, 8)), floors[model]
        ratio = f"{one['p50'] / f['ms']:.2f}×" if one else "-"
        share = f"{eight['rps'] / f['images_per_s']:.2f}" if eight else "-"
        lines.append(f"| {name} | {ratio} | {share} |")
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
