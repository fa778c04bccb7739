"""Triton's own load generator, perf_analyzer, against a running Triton (e.g. `make up`), per model.

    python -m bench.perf_analyzer segmentation                      # gRPC, concurrency 1..4
    python -m bench.perf_analyzer pose --concurrency 1:16:4 --protocol http
    python -m bench.perf_analyzer cutout -- --measurement-interval 10000   # more perf_analyzer flags

The binary ships in the pinned tritonclient 2.50 wheel (.venv/bin/perf_analyzer); it needs libb64 and
libcudart under their plain names, which PyTriton's wheel carries with hashed names: this links them
into .cache/perf_analyzer_libs and runs it with random inputs of the model's shapes. The machine is
noisy, so stability is relaxed to 50 % (the default 10 % rarely settles on a shared 2-core VM).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytriton

REPO = Path(__file__).resolve().parent.parent
LIBS = {"libb64.so.0d": "libb64-", "libcudart.so.12": "libcudart-"}


def library_dir(cache: Path) -> Path:
    bundled = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    out = cache / "perf_analyzer_libs"
    out.mkdir(parents=True, exist_ok=True)
    for name, prefix in LIBS.items():
        link = out / name
        if not link.exists():
            link.symlink_to(next(bundled.glob(prefix + "*")))
    return out


def command(model: str, url: str, protocol: str, concurrency: str, extra: list[str]) -> list[str]:
    return [
        str(Path(sys.executable).parent / "perf_analyzer"),
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "--concurrency-range",
        concurrency,
        "--stability-percentage",
        "50",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    ap.add_argument("--url", help="default: 127.0.0.1 and TRITON_GRPC_PORT (8001) or TRITON_HTTP_PORT (8000)")
    ap.add_argument("--concurrency", default="1:4:1", help="start:end:step")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # more perf_analyzer flags, after --
    args = ap.parse_args(argv[: len(argv) - len(extra) - (1 if "--" in argv else 0)])
    port = (
        os.environ.get("TRITON_GRPC_PORT", "8001")
        if args.protocol == "grpc"
        else os.environ.get("TRITON_HTTP_PORT", "8000")
    )
    env = os.environ | {"LD_LIBRARY_PATH": f"{library_dir(REPO / '.cache')}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    return subprocess.call(
        command(args.model, args.url or f"127.0.0.1:{port}", args.protocol, args.concurrency, extra), env=env
    )


if __name__ == "__main__":
    sys.exit(main())
