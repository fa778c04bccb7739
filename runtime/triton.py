"""Start the real tritonserver binary that ships inside the nvidia-pytriton wheel, on the CPU.

    python -m runtime.triton [--model-repository model_repository] [--http-port 8000] ...

It assembles a private server folder under .cache/ (the binary, the Python backend with the stub for
this Python, our Python-based "onnxruntime" backend), sets the library paths the copied binary needs,
and replaces itself with tritonserver (so signals reach Triton directly).
"""

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytriton

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# Debian's libjemalloc2 (`make up` installs it). With glibc's malloc the backend processes' heaps
# fragment under batches of every size and Triton's memory creeps up burst after burst; jemalloc gives
# freed pages back, so it stays flat (measured with `python -m bench.triton_memory`, docs/benchmarks.md).
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
# jemalloc purges freed pages only when the process allocates again, so an idle Triton kept the last
# burst's pages. Its background thread purges them while idle, 1 s after they were freed (Triton and
# its backend processes after a burst: 1294 → 1168 MB RSS, docs/benchmarks.md).
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"


def server_home(cache: Path) -> Path:
    """The private copy of Triton's folder, rebuilt when our backend changes."""
    bundled = Path(pytriton.__file__).parent / "tritonserver"
    home = cache / "tritonserver"
    if not (home / "bin" / "tritonserver").exists():
        tmp = cache / "tritonserver.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(bundled, tmp, ignore=shutil.ignore_patterns("python_backend_stubs"))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        shutil.copy2(
            bundled / "python_backend_stubs" / version / "triton_python_backend_stub", tmp / "backends" / "python"
        )
        shutil.rmtree(home, ignore_errors=True)
        tmp.rename(home)
    ours = HERE / "backends" / "onnxruntime" / "model.py"
    target = home / "backends" / "onnxruntime" / "model.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != ours.read_bytes():
        shutil.copy2(ours, target)
    return home


def environment() -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    # The Python backend stub finds numpy/onnxruntime through the `python` first on PATH.
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    libs = [str(Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    if "LD_PRELOAD" not in env:
        if JEMALLOC.exists():
            env["LD_PRELOAD"] = str(JEMALLOC)
            env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
        else:
            print(
                f"runtime.triton: {JEMALLOC} not found (Debian libjemalloc2); Triton runs with glibc's malloc, "
                "whose heaps grow under load",
                file=sys.stderr,
                flush=True,
            )
    return env


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-repository", type=Path, default=REPO / "model_repository")
    ap.add_argument("--http-port", type=int, default=int(os.environ.get("TRITON_HTTP_PORT", 8000)))
    ap.add_argument("--grpc-port", type=int, default=int(os.environ.get("TRITON_GRPC_PORT", 8001)))
    ap.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRITON_METRICS_PORT", 8002)))
    ap.add_argument(
        "--address",
        default=os.environ.get("TRITON_ADDRESS", "127.0.0.1"),
        help="interface to listen on (0.0.0.0 inside a container)",
    )
    ap.add_argument("--cache", type=Path, default=REPO / ".cache")
    ap.add_argument("--model-config-name", default=None, help="e.g. gpu, to load configs/gpu.pbtxt")
    ap.add_argument(
        "--shm-prefix",
        default=None,
        help="name prefix of the Python backend's /dev/shm files (its default: triton_<backend>_backend_shm_region_)",
    )
    ap.add_argument("extra", nargs="*", help="more tritonserver flags, after --")
    args = ap.parse_args(argv)
    home = server_home(args.cache)
    cmd = [
        str(home / "bin" / "tritonserver"),
        f"--model-repository={args.model_repository.resolve()}",
        f"--backend-directory={home / 'backends'}",
        f"--cache-directory={home / 'caches'}",
        f"--http-address={args.address}",
        f"--grpc-address={args.address}",
        f"--metrics-address={args.address}",
        f"--http-port={args.http_port}",
        f"--grpc-port={args.grpc_port}",
        f"--metrics-port={args.metrics_port}",
        "--exit-timeout-secs=5",
        "--log-verbose=0",
    ]
    if args.model_config_name:
        cmd.append(f"--model-config-name={args.model_config_name}")
    if args.shm_prefix:  # Python-based backends such as our onnxruntime take the Python backend's settings
        cmd.append(f"--backend-config=python,shm-region-prefix-name={args.shm_prefix}")
    os.execve(cmd[0], cmd + args.extra, environment())


if __name__ == "__main__":
    main()
