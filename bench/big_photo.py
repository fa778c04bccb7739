"""`make bench-big`: a big product photo through /v1/cutout and /v1/skin (issue 23).

The photo: CCP 0001 enlarged to 3000×4500 (cubic) and sent as a quality-90 JPEG, as shops upload them
(a synthetic figure when the shared data is absent). Starts Triton and the cutout and skin services on
free ports (runtime.stack.Stack, as `make bench`), sends each variant `--requests` times from one client
(requests of all variants interleaved, so each sees the same machine) and prints per variant the p50 and
p95 latency (the client's, over HTTP on loopback), the median of each Server-Timing stage and the
answer's bytes: cutout as PNG (the defaults) and as `output=webp`, and skin.

`--before REV` also serves the same endpoints with the code of git revision REV, in the same run and on
the same Triton: a second cutout and skin service started from `git archive REV` in a temporary folder.
That is the control for this run's code.

`--levers` first times the levers one by one in-process on the same photo (thread CPU time, so other
work on the machine counts less): the PNG encoders and the colour under alpha 0, WebP settings, and the
edge refinement on the garment's box against the whole photo.

    python -m bench.big_photo [--requests 10] [--before REV] [--levers]
"""

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

from bench.common import parse_server_timing
from runtime.stack import Ports, Stack, free_port
from services.catalog import service
from tests.images import encode

REPO = Path(__file__).resolve().parent.parent
SIZE = (3000, 4500)
STAGES = ("decode", "preprocess", "infer", "postprocess", "quality", "encode")
# (name, service, path, query)
VARIANTS = [
    ("cutout, PNG (defaults)", "cutout", "/v1/cutout", {}),
    ("cutout, PNG, clear=true", "cutout", "/v1/cutout", {"clear": "true"}),
    ("cutout, output=webp", "cutout", "/v1/cutout", {"output": "webp", "clear": "true"}),
    ("skin", "skin-generation", "/v1/skin", {}),
]


def big_photo() -> np.ndarray:
    from training.datasets import DATA_DIR

    path = DATA_DIR / "ccp" / "photos" / "0001.jpg"
    if path.exists():
        rgb = np.asarray(Image.open(path).convert("RGB"))
        return cv2.resize(rgb, SIZE, interpolation=cv2.INTER_CUBIC)
    from tests.images import synthetic_photo

    return synthetic_photo(*SIZE)


def start_revision(rev: str, stack: Stack, names: tuple[str, ...], folder: Path) -> dict[str, tuple]:
    """`names`' services as git revision `rev` wrote them, on `stack`'s Triton: {name: (url, process)}."""
    archive = subprocess.run(
        ["git", "archive", rev, "services", "fashionpixel"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    log_dir = REPO / "test-artifacts" / "logs" / "bench-big"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = {}
    for name in names:
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", service(name).app, "--port", str(port), "--no-access-log"]
        log = open(log_dir / f"{name}-{rev}.log", "ab")
        # cwd first on sys.path: the services import the revision's code, with this venv's packages.
        proc = subprocess.Popen(cmd, cwd=folder, env=stack.env, stdout=log, stderr=subprocess.STDOUT)
        started[name] = (f"http://127.0.0.1:{port}", proc)
    for name, (url, proc) in started.items():
        stack.wait_until(url + "/readyz", 120, proc)
    return started


def measure(targets: list[tuple[str, str, str, dict]], body: bytes, requests: int) -> dict[str, dict]:
    """targets: (label, url, path, query); one warm-up each, then `requests` rounds over all of them."""
    files = {"image": ("photo.jpg", body, "image/jpeg")}
    seen: dict[str, dict] = {label: {"ms": [], "stages": [], "bytes": [], "errors": 0} for label, *_ in targets}
    with httpx.Client(timeout=120) as client:
        for _, url, path, query in targets:
            client.post(url + path, params=query, files=files)
        for _ in range(requests):
            for label, url, path, query in targets:
                start = time.perf_counter()
                r = client.post(url + path, params=query, files=files)
                ms = (time.perf_counter() - start) * 1000
                s = seen[label]
                if r.status_code != 200:
                    s["errors"] += 1
                    continue
                s["ms"].append(ms)
                s["stages"].append(parse_server_timing(r.headers.get("server-timing", "")))
                s["bytes"].append(len(r.content))
                s["type"] = r.headers["content-type"]
    out = {}
    for label, s in seen.items():
        print(f"{label}: {' '.join(f'{m:.0f}' for m in s['ms'])} ms", flush=True)
        ms = s["ms"] or [float("nan")]
        out[label] = {
            "n": len(s["ms"]),
            "errors": s["errors"],
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "stages": {k: statistics.median(t.get(k, 0.0) for t in s["stages"]) for k in STAGES} if s["stages"] else {},
            "mb": statistics.median(s["bytes"]) / 1e6 if s["bytes"] else float("nan"),
            "type": s.get("type", "?"),
        }
    return out


def table(results: dict[str, dict]) -> str:
    lines = [
        "| variant | p50 ms | p95 ms | " + " | ".join(STAGES) + " | answer |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|",
    ]
    for label, r in results.items():
        stages = " | ".join(f"{r['stages'].get(k, 0):.0f}" for k in STAGES)
        lines.append(
            f"| {label} | {r['p50']:.0f} | {r['p95']:.0f} | {stages} | {r['mb']:.2f} MB {r['type']}"
            + (f", {r['errors']} errors" if r["errors"] else "")
            + " |"
        )
    return "\n".join(lines)


def cpu_ms(fn, *args, repeats: int = 3) -> tuple[float, object]:
    """Median thread CPU time of fn(*args) in ms, and its last result (cv2 on one thread: CPU = work)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.thread_time()
        out = fn(*args)
        times.append((time.thread_time() - start) * 1000)
    return statistics.median(times), out


def levers(image: np.ndarray) -> str:
    """Each lever against its control, in-process on `image`, with the served cutout network."""
    from export.onnxruntime_session import onnx_session
    from fashionpixel import cutout
    from fashionpixel.models import CUTOUT
    from fashionpixel.networks import OnnxNetwork, infer_with
    from fashionpixel.stages import inline, untimed
    from services.common.imaging import encode_png, encode_webp
    from tests.test_big_photos import whole_photo_refine

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        network = OnnxNetwork({CUTOUT.name: onnx_session(CUTOUT.onnx_path(REPO / "model_repository"), threads=1)})
        alpha = asyncio.run(
            cutout.matte(
                image, "all", focus=True, refine="guided", infer=infer_with(network, CUTOUT), cpu=inline, stage=untimed
            )
        )
        rows = []

        def row(lever: str, variant: str, fn, *args):
            ms, out = cpu_ms(fn, *args)
            size = f"{len(out) / 1e6:.2f} MB" if isinstance(out, bytes) else ""
            rows.append(f"| {lever} | {variant} | {ms:.0f} | {size} |")
            print(rows[-1], flush=True)

        def opencv_png(x):  # the encoder before: OpenCV, level 1
            code = cv2.COLOR_RGBA2BGRA if x.ndim == 3 and x.shape[2] == 4 else cv2.COLOR_RGB2BGR
            return cv2.imencode(".png", cv2.cvtColor(x, code) if x.ndim == 3 else x, [cv2.IMWRITE_PNG_COMPRESSION, 1])[
                1
            ].tobytes()

        PILLOW_RLE = {"format": "PNG", "compress_level": 1, "compress_type": zlib.Z_RLE}

        def pillow(x, **kw):
            out = io.BytesIO()
            Image.fromarray(x).save(out, **kw)
            return out.getvalue()

        as_is = cutout.compose(image, alpha, "rgba", None)
        clear = cutout.compose(image, alpha, "rgba", None, clear=True)
        row("compose", "photo + alpha", cutout.compose, image, alpha, "rgba", None)
        row("compose", "clear colour under alpha 0", cutout.compose, image, alpha, "rgba", None, True)
        row("encode", "OpenCV PNG level 1, as is (before)", opencv_png, as_is)
        row("encode", "OpenCV PNG level 1, clear colour", opencv_png, clear)
        row("encode", "Pillow PNG level 1, clear colour", lambda: pillow(clear, format="PNG", compress_level=1))
        row("encode", "Pillow PNG level 1 RLE, clear colour", lambda: pillow(clear, **PILLOW_RLE))
        row(
            "encode",
            "Pillow PNG level 1 RLE, as is (served until 2026-11-30 16:50)",
            lambda: pillow(as_is, **PILLOW_RLE),
        )
        row("encode", "Up filter + ISA-L level 1, clear colour (served)", encode_png, clear)
        row("encode", "Up filter + ISA-L level 1, as is (served)", encode_png, as_is)
        row(
            "encode",
            "WebP lossless, method 0",
            lambda: pillow(clear, format="WEBP", lossless=True, quality=0, method=0),
        )
        row("encode", "WebP q90 + lossless alpha, method 0", lambda: pillow(clear, format="WEBP", quality=90, method=0))
        row("encode", "WebP q90 + lossless alpha, method 2 (served)", encode_webp, clear)
        h, w = image.shape[:2]
        from fashionpixel.refine import work_size

        size = work_size(w, h, cutout.MAX_WORK_PIXELS)
        work = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        prob = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        row("edges at work size", "guided filter, whole photo (before)", whole_photo_refine, work, prob, "guided")
        row("edges at work size", "guided filter, garment's box (after)", cutout.refine_edges, work, prob, "guided")
        row(
            "upscale alpha to the photo",
            "cubic, whole photo",
            lambda: np.clip(cv2.resize(prob, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1),
        )
        return "\n".join(["| lever | variant | CPU ms | bytes |", "|---|---|---|---|", *rows])
    finally:
        cv2.setNumThreads(threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--before", metavar="REV", help="also serve the endpoints with git revision REV's code")
    ap.add_argument("--levers", action="store_true", help="first time each lever in-process")
    args = ap.parse_args()

    image = big_photo()
    body = encode(image, quality=90)
    print(f"photo {SIZE[0]}x{SIZE[1]}, JPEG {len(body) / 1e6:.2f} MB", flush=True)
    if args.levers:
        print(levers(image), flush=True)
    names = ("cutout", "skin-generation")
    stack = Stack(
        Ports.free(), log_dir=REPO / "test-artifacts" / "logs" / "bench-big", env={"HOME": tempfile.mkdtemp()}
    )
    before: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as folder:
        try:
            stack.start(timeout=180, services=tuple(service(n) for n in names))
            targets = [(label, stack.service_url(svc), path, q) for label, svc, path, q in VARIANTS]
            if args.before:
                before = start_revision(args.before, stack, names, Path(folder))
                targets += [
                    (f"{label}, {args.before}", before[svc][0], path, q)
                    for label, svc, path, q in VARIANTS
                    if not q.keys() & {"output", "clear"}  # parameters the code before did not have
                ]
            results = measure(targets, body, args.requests)
        finally:
            for _, proc in before.values():
                proc.terminate()
                proc.wait(15)
            stack.stop()
    print(f"\n{args.requests} requests per variant, one client, interleaved:\n")
    print(table(results))


if __name__ == "__main__":
    main()
