"""The tuning sweep behind the served settings: one knob at a time against the committed stack.

    python -m bench.tune                      # = make bench-tune; writes docs/tuning.md
    python -m bench.tune --seconds 20 --only "10 ms batching delay"

For every variant it starts Triton (a copy of model_repository/ with configs written from the
Triton specs of export/triton_config.py, changed as the variant says) and the segmentation service, then measures
`/v1/segment` with post-processing off (the endpoint where serving overhead shows most) at 1 and 8
clients: p50, throughput, the service's inference stage, how long a lone request waited in Triton's
queue (its statistics), and Triton's memory (PSS) afterwards. Then,
against the committed stack, two things a variant cannot show: gRPC against HTTP from Python for one
segmentation inference, and the image codecs the services could use.
"""

import argparse
import asyncio
import datetime
import io
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

from bench.common import ENDPOINTS, load, photo, repository_copy
from runtime.stack import REPO, Ports, Stack, tree_mb
from services.catalog import SERVICES

GENERATED_END = "<!-- make bench-tune writes everything above this line; below is kept -->"
SEGMENT_OFF = next(e for e in ENDPOINTS if e[0] == "segment fashion, post-processing off")

# name → (spec changes for every model, extra environment of Triton and the services, service workers)
VARIANTS = {
    "committed: 2 instances × 2 threads that do not spin, 1 thread for a batch of 2, batches ≤ 2, no batching delay, "
    "arena on and given back after 5 s idle, memory pattern off, jemalloc, tensors in shared memory, 1 worker with one malloc arena": (
        {},
        {},
        1,
    ),
    "2 instances × 2 threads that do not spin, also for a batch of 2": ({"cpu_busy_threads": None}, {}, 1),
    "2 instances × 1 thread (the setting of 2026-11-26 to 2026-11-30)": (
        {"cpu_threads": 1, "cpu_parameters": {}},
        {},
        1,
    ),
    "1 instance × 2 threads that spin (the setting before the first sweep)": (
        {"cpu_instances": 1, "cpu_parameters": {}},
        {},
        1,
    ),
    "1 instance × 2 threads that do not spin": ({"cpu_instances": 1}, {}, 1),
    "2 instances × 2 threads that spin": ({"cpu_parameters": {}}, {}, 1),
    "batches ≤ 4": ({"cpu_max_batch_size": 4, "cpu_preferred_batch_sizes": (2, 4)}, {}, 1),
    "batches ≤ 8 (the GPU's)": ({"cpu_max_batch_size": 8, "cpu_preferred_batch_sizes": (4, 8)}, {}, 1),
    "2 ms batching delay (the setting before)": ({"cpu_max_queue_delay_us": 2000}, {}, 1),
    "10 ms batching delay": ({"cpu_max_queue_delay_us": 10_000}, {}, 1),
    "ONNX Runtime memory arena off": ({"cpu_mem_arena": False}, {}, 1),
    "ONNX Runtime arena gives back each run's growth (shrinkage)": (
        {"cpu_parameters": {"session.intra_op.allow_spinning": "0", "memory.enable_memory_arena_shrinkage": "cpu:0"}},
        {},
        1,
    ),
    "ONNX Runtime arena kept for good, not given back once idle (the setting before)": (
        {"cpu_arena_idle_release_s": None},
        {},
        1,
    ),
    "ONNX Runtime memory pattern on (the setting before)": ({"cpu_mem_pattern": True}, {}, 1),
    "glibc malloc instead of jemalloc": ({}, {"LD_PRELOAD": ""}, 1),
    "2 service workers": ({}, {}, 2),
    # the services' own default (services/common/idle_trim.py: keep_freed_memory) turned off by hand
    "services hand freed memory back at once (glibc's adaptive thresholds)": ({}, {"KEEP_FREED_MEMORY": "0"}, 1),
    # services/common/shared_memory.py turned off: the tensors inside the gRPC messages
    "tensors in the gRPC messages, not in shared memory": ({}, {"TRITON_SHARED_MEMORY": "0"}, 1),
    # runtime/stack.py and the services' image: MALLOC_ARENA_MAX=1
    "two glibc malloc arenas per service (the setting before)": ({}, {"MALLOC_ARENA_MAX": "2"}, 1),
    # services/segmentation/app.py: a lone request's pose look beside the first pass (POSE_AHEAD_WHEN_IDLE), off
    # since the routing head decides most photos without it
    "the pose network asked beside the first pass for a lone request (the setting before)": (
        {},
        {"POSE_AHEAD_WHEN_IDLE": "1"},
        1,
    ),
}


def queue_wait(triton_url: str, model: str = "segmentation") -> tuple[float, int]:
    """Triton's running totals for `model`: ms its requests spent in the scheduler's queue, and requests."""
    stats = httpx.get(f"{triton_url}/v2/models/{model}/stats").json()["model_stats"]
    queue = next(s for s in stats if s["version"] == "1")["inference_stats"]["queue"]
    return queue["ns"] / 1e6, queue["count"]


def measure_variant(spec_changes: dict, env: dict, workers: int, seconds: float) -> dict:
    name, service, path, query, fields = SEGMENT_OFF
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            Ports.free(),
            repository=repository_copy(Path(tmp), **spec_changes),
            log_dir=Path(tmp) / "logs",
            env=env | {"HOME": tmp},
            workers=workers,
        )
        try:
            stack.start(timeout=180, services=tuple(s for s in SERVICES if s.name == service))
            idle = tree_mb(stack.triton.pid)[1]
            url, body = stack.service_url(service) + path, photo()
            asyncio.run(load(url, query, body, fields, 2, 2))  # warm-up
            out = {}
            for clients in (1, 8):
                (ms, n) = queue_wait(stack.triton_url())
                out[clients] = asyncio.run(load(url, query, body, fields, clients, seconds))
                (ms_after, n_after) = queue_wait(stack.triton_url())
                out[clients]["queue_ms"] = (ms_after - ms) / max(n_after - n, 1)
            out["pss"] = (idle, tree_mb(stack.triton.pid)[1])
            return out
        finally:
            stack.stop()


def protocol_rows(runs: int = 30) -> list[tuple[str, float]]:
    """Median ms of one segmentation inference (batch 1) from Python, per protocol."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Ports.free(), log_dir=Path(tmp) / "logs", env={"HOME": tmp})
        try:
            stack.start(timeout=180, services=())
            image = np.random.default_rng(0).integers(0, 256, (1, 384, 256, 3), dtype=np.uint8)
            rows = []
            for label, module, url in (
                ("gRPC (tritonclient.grpc)", grpcclient, f"127.0.0.1:{stack.ports.triton_grpc}"),
                ("HTTP (tritonclient.http)", httpclient, f"127.0.0.1:{stack.ports.triton_http}"),
            ):
                client = module.InferenceServerClient(url)
                inp = module.InferInput("image", list(image.shape), "UINT8")
                inp.set_data_from_numpy(image)
                outs = [module.InferRequestedOutput(n) for n in ("person", "fashion")]
                times = []
                for i in range(runs + 3):
                    start = time.perf_counter()
                    result = client.infer("segmentation", [inp], outputs=outs)
                    result.as_numpy("fashion")
                    if i >= 3:
                        times.append((time.perf_counter() - start) * 1000)
                rows.append((label, statistics.median(times)))
            return rows
        finally:
            stack.stop()


def median_ms(fn, runs: int = 30) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def codec_rows() -> list[tuple[str, float]]:
    """Decoding the benchmark JPEG and encoding a full-size RGBA PNG, per library and setting."""
    jpeg = photo()
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    rgba = np.dstack([rgb, np.where(rgb.mean(2) < 240, 255, 0).astype(np.uint8)])

    def pil_png(level):
        buf = io.BytesIO()
        Image.fromarray(rgba).save(buf, "PNG", compress_level=level)
        return buf.getvalue()

    return [
        (
            "decode JPEG: Pillow (served: EXIF orientation, lazy header checks)",
            median_ms(lambda: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))),
        ),
        ("decode JPEG: OpenCV", median_ms(lambda: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))),
        (
            "encode RGBA PNG: OpenCV level 1 (served)",
            median_ms(lambda: cv2.imencode(".png", rgba, [cv2.IMWRITE_PNG_COMPRESSION, 1])),
        ),
        (
            "encode RGBA PNG: OpenCV level 3 (its default)",
            median_ms(lambda: cv2.imencode(".png", rgba, [cv2.IMWRITE_PNG_COMPRESSION, 3])),
        ),
        ("encode RGBA PNG: Pillow level 1", median_ms(lambda: pil_png(1))),
        ("encode RGBA PNG: Pillow level 6 (its default)", median_ms(lambda: pil_png(6))),
    ]


def write_report(out: Path, variants: dict, protocols, codecs, seconds: float) -> None:
    lines = [
        "# Tuning sweep",
        "",
        f"Measured {datetime.date.today()} with `make bench-tune` (`python -m bench.tune`), {seconds:.0f} s per "
        "row, this 2-core machine, nothing else running. `/v1/segment?crf=false&min_region=0&superpixels=false` "
        "on the 400×600 benchmark photo; one knob changed at a time (every model's config gets it). "
        "Queued ms: the time a segmentation request waited in Triton's scheduler at one client, from Triton's "
        "statistics. Triton PSS: Triton and its backend processes after the rows.",
        "",
        "| variant | p50 ms, 1 client | infer ms | queued ms | req/s, 1 client | p50 ms, 8 clients | req/s, 8 clients | "
        "8 / 1 | errors | Triton PSS MB, idle → after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in variants.items():
        one, eight = r[1], r[8]
        lines.append(
            f"| {name} | {one['p50']:.0f} | {one['stages'].get('infer', 0):.0f} | {one['queue_ms']:.1f} | {one['rps']:.1f} | "
            f"{eight['p50']:.0f} | {eight['rps']:.1f} | {eight['rps'] / one['rps']:.2f}× | "
            f"{one['errors'] + eight['errors']} | {r['pss'][0]:.0f} → {r['pss'][1]:.0f} |"
        )
    lines += [
        "",
        "One segmentation inference (batch 1, 384×256 in, 9×384×256 FP16 out) from Python, median of 30:",
        "",
        "| protocol | ms |",
        "|---|---|",
    ] + [f"| {n} | {ms:.1f} |" for n, ms in protocols]
    lines += [
        "",
        "Image codecs on the benchmark photo (400×600), median of 30:",
        "",
        "| operation | ms |",
        "|---|---|",
    ] + [f"| {n} | {ms:.1f} |" for n, ms in codecs]
    kept = out.read_text().partition(GENERATED_END)[2] if out.exists() else "\n"
    out.write_text("\n".join(lines) + "\n\n" + GENERATED_END + kept)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--only", action="append", help="run just these variants (names as in the table)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "tuning.md")
    args = ap.parse_args(argv)
    results = {}
    for name, (changes, env, workers) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        results[name] = r = measure_variant(changes, env, workers, args.seconds)
        print(
            f"{name}: 1 client p50 {r[1]['p50']:.0f} ms {r[1]['rps']:.1f} req/s, queued {r[1]['queue_ms']:.1f} ms; 8 clients p50 {r[8]['p50']:.0f} ms "
            f"{r[8]['rps']:.1f} req/s; Triton PSS {r['pss'][0]:.0f} → {r['pss'][1]:.0f} MB",
            flush=True,
        )
    protocols, codecs = protocol_rows(), codec_rows()
    print(protocols, codecs, flush=True)
    write_report(args.out, results, protocols, codecs, args.seconds)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
