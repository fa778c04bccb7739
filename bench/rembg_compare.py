"""Our cutout endpoint against what users would otherwise run: rembg's HTTP server, with the same network.

    make bench-rembg        # = .venv-rembg (bench/requirements-rembg.lock) + python -m bench.rembg_compare

rembg cannot download its U²-Net weights here (no internet), and a different network would compare
networks, not serving. So rembg gets *our* cutout network: `rembg_model()` wraps
model_repository/cutout/1/model.onnx into the interface of rembg's `u2net_custom` session (float
1×3×320×320 ImageNet-normalised in, a 1×1×320×320 map out: here the probability of "any garment").
rembg then does what it always does: squash the photo to 320×320 (Lanczos), run ONNX Runtime in its
process, min-max the map, resize it back (Lanczos) and cut out. Ours: letterbox, Triton, the default
guided-filter edges (focus pass off). Both servers are measured on the same CCP validation photos, one after the other,
on this machine: latency and throughput at 1/4/8 clients, and Dice / boundary F of the alpha ≥ 0.5
against CCP's garment labels. The result is a section of docs/benchmarks.md.
"""

import argparse
import asyncio
import io
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

from bench.common import REMBG_SECTION, load
from runtime.stack import Ports, Stack, free_port
from training.datasets import ccp_samples, read_garments
from training.metrics import Tally, truth_mask

REPO = Path(__file__).resolve().parent.parent
REMBG = REPO / ".venv-rembg" / "bin" / "rembg"
SIZE = 320  # rembg's u2net input
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def rembg_model(cutout_onnx: Path, out: Path) -> Path:
    """Our cutout graph behind rembg's u2net_custom interface, as one ONNX file."""
    inner = onnx.load(str(cutout_onnx))
    (inp,) = inner.graph.input
    h, w = (d.dim_value for d in inp.type.tensor_type.shape.dim[1:3])
    c = lambda name, values, shape: helper.make_tensor(name, TensorProto.FLOAT, shape, values)  # noqa: E731
    pre = [
        # rembg's normalisation undone (it divides by the image's max, ~255 for photos), then our canvas size
        helper.make_node("Mul", ["input", "std"], ["x1"]),
        helper.make_node("Add", ["x1", "mean"], ["x2"]),
        helper.make_node("Mul", ["x2", "k255"], ["x3"]),
        helper.make_node("Resize", ["x3", "", "", "in_size"], ["x4"], mode="linear"),
        helper.make_node("Clip", ["x4", "zero", "k255"], ["x5"]),
        helper.make_node("Round", ["x5"], ["x6"]),
        helper.make_node("Transpose", ["x6"], ["x7"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["x7"], [inp.name], to=TensorProto.UINT8),
    ]
    post = [  # any garment = 1 - p(none), back at 320×320
        helper.make_node("Slice", ["garment", "s0", "s1", "s_axis"], ["none"]),
        helper.make_node("Cast", ["none"], ["none_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "none_f"], ["any"]),
        helper.make_node("Resize", ["any", "", "", "out_size"], ["mask"], mode="linear"),
    ]
    inits = [
        c("std", STD, [1, 3, 1, 1]),
        c("mean", MEAN, [1, 3, 1, 1]),
        c("k255", [255.0], []),
        c("zero", [0.0], []),
        c("one", [1.0], []),
        helper.make_tensor("in_size", TensorProto.INT64, [4], [1, 3, h, w]),
        helper.make_tensor("out_size", TensorProto.INT64, [4], [1, 1, SIZE, SIZE]),
        helper.make_tensor("s0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("s1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("s_axis", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        pre + list(inner.graph.node) + post,
        "cutout_for_rembg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        initializer=inits + list(inner.graph.initializer),
    )
    model = helper.make_model(graph, opset_imports=inner.opset_import)
    model.ir_version = inner.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def rembg_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    if not REMBG.exists():
        raise SystemExit(f"{REMBG} is missing: run `make bench-rembg` (it builds .venv-rembg)")
    env = os.environ | {"U2NET_HOME": str(model.parent), "OMP_NUM_THREADS": "2"}
    return subprocess.Popen(
        [str(REMBG), "s", "--no-ui", "-p", str(port), "-h", "127.0.0.1", "-t", "2"],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def wait(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise TimeoutError(url)


def quality(post, photos) -> dict:
    """Dice / boundary F of the alpha (≥ 0.5) of each server's RGBA answer vs CCP's garment union."""
    tally, ms = Tally(), []
    for path, groups in photos:
        start = time.perf_counter()
        r = post(path.read_bytes())
        ms.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
        alpha = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[..., 3]
        tally.add(alpha >= 128, truth_mask(groups, "all"))
    return tally.summary() | {"ms_median": float(np.median(ms))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=60, help="CCP validation photos for the quality rows")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    model = rembg_model(REPO / "model_repository/cutout/1/model.onnx", work / "cutout_for_rembg.onnx")
    samples = [s for s in ccp_samples() if s.split == "val"][: args.photos]
    photos = [(s.image, read_garments(s)) for s in samples]
    body = photos[0][0].read_bytes()
    rembg_query, rembg_form = {"extras": json.dumps({"model_path": str(model)})}, {"model": "u2net_custom"}
    results = {}

    port = free_port()
    log_dir = REPO / "test-artifacts" / "logs" / "bench-rembg"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = rembg_server(model, port, log_dir / "rembg.log")
    try:
        wait(f"http://127.0.0.1:{port}/api")
        url = f"http://127.0.0.1:{port}/api/remove"
        with httpx.Client(timeout=120) as c:
            post = lambda data: c.post(
                url,
                params=rembg_query,
                data=rembg_form,  # noqa: E731
                files={"file": ("p.jpg", data, "image/jpeg")},
            )
            results["rembg"] = {"quality": quality(post, photos)}
        results["rembg"]["load"] = {
            n: asyncio.run(load(url, rembg_query, body, ("file",), n, args.seconds, rembg_form))
            for n in args.concurrency
        }
    finally:
        server.terminate()
        server.wait(30)

    stack = Stack(Ports.free(), log_dir=log_dir, env={"HOME": str(work)})
    try:
        stack.start(timeout=180)
        url = stack.service_url("cutout") + "/v1/cutout"
        with httpx.Client(timeout=120) as c:
            post = lambda data: c.post(url, files={"image": ("p.jpg", data, "image/jpeg")})  # noqa: E731
            results["ours"] = {"quality": quality(post, photos)}
        results["ours"]["load"] = {
            n: asyncio.run(load(url, {}, body, ("image",), n, args.seconds)) for n in args.concurrency
        }
    finally:
        stack.stop()
    (REPO / "test-artifacts" / "rembg_compare.json").write_text(json.dumps(results, indent=1))
    write_section(args.out, results, len(photos), args.seconds)
    print(json.dumps(results, indent=1))


def write_section(out: Path, results: dict, photos: int, seconds: float) -> None:
    rows = [
        "| server | Dice (all) | boundary F | clients | p50 ms | p95 ms | req/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "ours": "ours: `/v1/cutout` (letterbox, Triton, guided filter)",
        "rembg": "rembg 2.0.86 `rembg s` (u2net_custom, same network)",
    }
    for key in ("ours", "rembg"):
        q = results[key]["quality"]
        for n, r in results[key]["load"].items():
            rows.append(
                f"| {names[key]} | {q['dice']:.4f} | {q['boundary_f']:.3f} | {n} | {r['p50']:.0f} | "
                f"{r['p95']:.0f} | {r['rps']:.1f} | {r['errors']} |"
            )
    text = "\n".join(
        [
            REMBG_SECTION,
            "",
            f"`make bench-rembg` (`python -m bench.rembg_compare`), {seconds:.0f} s per load row, Dice and boundary F "
            f"(2 px) of the alpha ≥ 0.5 on {photos} CCP validation photos (~550×825). rembg cannot fetch its own "
            "U²-Net here, so it serves our cutout network wrapped in its `u2net_custom` interface "
            "(bench/rembg_compare.py): same weights, so the difference is the serving pipeline. rembg runs the "
            "model in its own process with 2 threads; ours goes through Triton.",
            "",
            *rows,
            "",
        ]
    )
    old = out.read_text() if out.exists() else ""
    head, _, rest = old.partition(REMBG_SECTION)
    after = rest[rest.find("\n## ") :] if "\n## " in rest else ""  # the sections after ours stay
    # the paragraph written by hand below the table stays too
    lines = rest[: len(rest) - len(after)].split("\n")
    last_row = max((i for i, line in enumerate(lines) if line.startswith("|")), default=len(lines) - 1)
    by_hand = "\n".join(lines[last_row + 1 :]).strip()
    out.write_text(head.rstrip() + "\n\n" + text + (f"\n{by_hand}\n" if by_hand else "") + after)


if __name__ == "__main__":
    main()
