"""What the benchmark commands share: the photo, the endpoints and their load loop, and a model
repository with changed Triton settings (bench.run, bench.tune, bench.rembg_compare, bench.big_photo,
bench.triton_memory)."""

import asyncio
import statistics
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np

from export.triton_config import SPECS, cpu_config
from runtime.stack import REPO
from tests.images import encode

REMBG_SECTION = "## Our cutout against rembg"  # docs/benchmarks.md's section written by bench/rembg_compare.py


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


def repository_copy(where: Path, **spec_changes) -> Path:
    """model_repository/ under `where`: the committed ONNX files, CPU configs written from the specs
    with `spec_changes` (e.g. cpu_max_queue_delay_us=2000, cpu_parameters={"enable_mem_pattern": "0"})."""
    repo = where / "model_repository"
    for name, spec in SPECS.items():
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "1" / "model.onnx").symlink_to(REPO / "model_repository" / name / "1" / "model.onnx")
        (repo / name / "config.pbtxt").write_text(cpu_config(replace(spec, **spec_changes)))
    return repo
