"""`make up`: start Triton (CPU) with model_repository/, then every service; print their URLs once all
are ready; stay in the foreground; on Ctrl-C or SIGTERM stop everything it started (within 15 s).

The same `Stack` class starts the stack for the tests, on free ports, with logs in files.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.catalog import SERVICES, ServiceInfo

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ports:
    triton_http: int = 8000
    triton_grpc: int = 8001
    triton_metrics: int = 8002
    services: dict[str, int] = field(default_factory=lambda: {s.name: s.port for s in SERVICES})

    @classmethod
    def free(cls) -> "Ports":
        """Ports nobody listens on now (tests and benchmarks run beside a `make up`)."""
        return cls(free_port(), free_port(), free_port(), {s.name: free_port() for s in SERVICES})

    @classmethod
    def from_env(cls) -> "Ports":
        env = os.environ
        return cls(
            int(env.get("TRITON_HTTP_PORT", 8000)),
            int(env.get("TRITON_GRPC_PORT", 8001)),
            int(env.get("TRITON_METRICS_PORT", 8002)),
            {s.name: int(env.get(s.port_env, s.port)) for s in SERVICES},
        )


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Triton's backend stubs, the services of `make up`), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def live_group_members(group: int, wait: float = 10.0) -> list[int]:
    """Processes of a process group still running (zombies not counted: they wait for a reaper) after
    up to `wait` seconds; [] once the group is gone."""
    deadline = time.monotonic() + wait
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                live.append(int(stat.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.2)


def _proc_kb(path: str, *keys: str) -> float:
    """The sum of `keys`' kB values in one read of a /proc file (0 when the process is gone)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0.0
    return sum(int(ln.split()[1]) for ln in lines if ln.startswith(keys))


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 when it is gone)."""
    return _proc_kb(f"/proc/{pid}/status", "VmRSS:") / 1024


def pss_mb(pid: int) -> float:
    """Proportional resident memory in MB: pages shared with other processes (Triton and its backend
    processes share the tensors' memory pool) count once in a sum of PSS, once per process in RSS."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024


def tree_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over a process and all its descendants (Triton's backend processes)."""
    pids = {pid} | descendants(pid)
    return sum(map(rss_mb, pids)), sum(map(pss_mb, pids))


def tree_heap_mb(pid: int) -> float:
    """Anonymous and shared-memory PSS in MB over a process tree: what a leak grows (heaps, Triton's
    tensor pool). Unlike all of PSS it leaves out library pages, whose share moves whenever another
    program maps or unmaps the same files (another Triton's backends, a test's extra service)."""
    pids = {pid} | descendants(pid)
    return sum(_proc_kb(f"/proc/{p}/smaps_rollup", "Pss_Anon:", "Pss_Shmem:") for p in pids) / 1024


def memory_table(roots: dict[str, int]) -> str:
    """Every process of the given trees (a name for each root; Triton's backend processes named by their
    instance, <model>_<group>_<index>), RSS, PSS and PSS's anonymous part (heaps) in MB, as a markdown table."""
    rows = []
    for root, pid in roots.items():
        for p in sorted({pid} | descendants(pid)):
            try:
                args = Path(f"/proc/{p}/cmdline").read_text().split("\0")
            except OSError:  # gone meanwhile
                continue
            instance = next((a for a in args if re.fullmatch(r"\w+_\d+_\d+", a)), None)
            name = instance or (root if p == pid else f"{root} child {p}")
            anon = _proc_kb(f"/proc/{p}/smaps_rollup", "Pss_Anon:") / 1024
            rows.append(f"| {name} | {rss_mb(p):.0f} | {pss_mb(p):.0f} | {anon:.0f} |")
    return "| process | RSS MB | PSS MB | of it heap MB |\n|---|---|---|---|\n" + "\n".join(rows)


class Stack:
    def __init__(
        self,
        ports: Ports,
        repository: Path = REPO / "model_repository",
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        workers: int = 1,
    ):
        self.ports, self.repository, self.log_dir, self.host, self.workers = ports, repository, log_dir, host, workers
        self.env = dict(os.environ) | (env or {})
        self.env["TRITON_GRPC_URL"] = f"127.0.0.1:{ports.triton_grpc}"
        # glibc gives every thread its own malloc arena; with a CPU thread pool decoding images of all
        # sizes that fragments into steadily growing RSS. One arena keeps it flat and lets the idle trim
        # give back what a second one held in fragments (the cutout after 60 real photos: 146 → 112 MB;
        # docs/tuning.md). The image sets it too.
        self.env.setdefault("MALLOC_ARENA_MAX", "1")
        self.triton: subprocess.Popen | None = None
        # Triton's Python backend keeps each model instance's tensors in /dev/shm files and deletes them
        # only when it shuts down cleanly; a killed Triton leaves them (9, 16 MB, per Triton). A prefix
        # of our own says which are this stack's, to delete once it is gone.
        self.triton_shm_prefix = f"triton-stack-{secrets.token_hex(4)}_"
        self.services: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop children in order.
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self.env | (env or {}),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )

    def start_triton(self) -> None:
        if self.triton is not None:  # a restart: the crashed Triton's backend processes outlive it
            self.stop_triton()
        p = self.ports
        self.triton = self._spawn(
            "triton",
            [
                sys.executable,
                "-m",
                "runtime.triton",
                f"--model-repository={self.repository}",
                f"--http-port={p.triton_http}",
                f"--grpc-port={p.triton_grpc}",
                f"--metrics-port={p.triton_metrics}",
                f"--shm-prefix={self.triton_shm_prefix}",
            ],
        )

    def demo_env(self, info: ServiceInfo) -> dict[str, str]:
        """The /demo page (on segmentation) calls the other services from the browser: it learns their
        URLs, and they accept its origin (as 127.0.0.1 and as localhost), unless CORS_ORIGINS is set."""
        page_port = self.ports.services["segmentation"]
        if info.name == "segmentation":
            return {
                "DEMO_CUTOUT_URL": self.service_url("cutout"),
                "DEMO_SKIN_URL": self.service_url("skin-generation"),
                "DEMO_POSE_TRANSFER_URL": self.service_url("pose-transfer"),
            }
        origins = {f"http://{h}:{page_port}" for h in (self.host, "127.0.0.1", "localhost") if h != "0.0.0.0"}
        return {"CORS_ORIGINS": self.env.get("CORS_ORIGINS") or ",".join(sorted(origins))}

    def start_service(self, info: ServiceInfo) -> None:
        port = self.ports.services[info.name]
        self.services[info.name] = self._spawn(
            info.name,
            [
                sys.executable,
                "-m",
                "uvicorn",
                info.app,
                "--host",
                self.host,
                "--port",
                str(port),
                "--timeout-graceful-shutdown",
                "8",
                "--no-access-log",
                "--workers",
                str(self.workers),
            ],
            self.demo_env(info),
        )

    def triton_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.triton_http}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.services[name]}"

    def wait_until(self, url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{url} not ready after {timeout} s")

    def start(self, timeout: float = 120, services: tuple[ServiceInfo, ...] = SERVICES) -> None:
        """Triton, then `services` (all by default; none for Triton alone), each waited for until ready."""
        self.start_triton()
        self.wait_until(self.triton_url() + "/v2/health/ready", timeout, self.triton)
        for info in services:
            self.start_service(info)
        for info in services:
            self.wait_until(self.service_url(info.name) + "/readyz", timeout, self.services[info.name])

    @staticmethod
    def _stop(proc: subprocess.Popen | None, timeout: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_triton(self) -> None:
        self._stop(self.triton, 8)
        if self.triton is not None:
            # Backend processes still starting when Triton went (killed, or past its exit timeout) outlive
            # it; they are in its process group.
            try:
                os.killpg(self.triton.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for leftover in Path("/dev/shm").glob(self.triton_shm_prefix + "*"):
                leftover.unlink(missing_ok=True)

    def stop(self) -> None:
        procs = list(self.services.values())
        for proc in procs:  # services first (they finish in-flight requests), then Triton
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            self._stop(proc, 8)
        self.stop_triton()


def main() -> None:
    stack = Stack(Ports.from_env(), host=os.environ.get("HOST", "127.0.0.1"))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        print("\nFashion Pixel is up:", flush=True)
        print(f"  triton          {stack.triton_url()}  (gRPC 127.0.0.1:{stack.ports.triton_grpc})")
        for info in SERVICES:
            print(f"  {info.name:<15} {stack.service_url(info.name)}  (docs: {stack.service_url(info.name)}/docs)")
        print("Ctrl-C stops everything.", flush=True)
        while True:
            for name, proc in [("triton", stack.triton), *stack.services.items()]:
                if proc is not None and proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", flush=True)
                    raise KeyboardInterrupt
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not interrupt the orderly stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping…", flush=True)
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
