"""tools/batch.py --ray on a real Ray cluster of two nodes on 127.0.0.1 (a head and a worker, started
here with Ray's own test cluster, ray.cluster_utils.Cluster) against the real stack's segmentation
service: photos spread over both nodes, the worker node killed mid-run with no photo lost or done
twice, a resumed run that redoes only what is missing, and every Ray process stopped afterwards. Also
the list-file input, and the 503 retries of both request paths (local and Ray) against a tiny server."""

import asyncio
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from runtime.stack import descendants
from tests.conftest import REPO, wait_for
from tests.images import encode, synthetic_photo
from tools.batch import listed, request, request_blocking

pytestmark = pytest.mark.slow

# Everything on loopback: Ray would otherwise replace 127.0.0.1 by this machine's own address
# (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes it keep the loopback address), and never phone home.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ray_processes() -> set[int]:
    """Our processes that belong to Ray (the nodes' servers, raylets and workers are all below us)."""
    return {p for p in descendants(os.getpid()) if running(p) and "ray" in cmdline(p)}


DRIVERS: list[subprocess.Popen] = []  # the batch runs, stopped with the cluster should a test fail midway


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    import ray.cluster_utils

    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    # Cluster() notes its address in /tmp/ray/ray_current_cluster whatever temp_dir says, and does not make
    # the folder: on a machine where Ray never ran with its default folder, it fails without it
    Path("/tmp/ray").mkdir(exist_ok=True)
    common = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=100 * 1024 * 1024)
    c = ray.cluster_utils.Cluster(
        initialize_head=True,
        shutdown_at_exit=True,
        head_node_args=dict(common, include_dashboard=False, temp_dir=temp_dir),
    )
    try:
        c.worker = c.add_node(**common)
        assert ray_processes(), "the cluster's processes are not below this one: the check below would see none"
        yield c
    finally:
        for proc in DRIVERS:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
        left = ray_processes()
        deadline = time.monotonic() + 20
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = ray_processes()
        described = [cmdline(p)[:80] for p in left]
        for pid in left:  # ours (below this process): never leave them running, then fail
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        current = Path("/tmp/ray/ray_current_cluster")  # Cluster() notes its address there for ray.init()
        if current.exists() and current.read_text().strip() == c.address:
            current.unlink()
        assert not left, f"Ray processes left after shutdown: {described}"


def make_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.roll(synthetic_photo(300 + 4 * i, 450), 7 * i, axis=1)
        paths.append(folder / f"p{i:03d}.jpg")
        paths[-1].write_bytes(encode(img, "JPEG", quality=90))
    return paths


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def batch(stack, cluster, src: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "tools.batch",
        str(src),
        str(out),
        "--url",
        stack.service_url("segmentation") + "/v1/segment",
        "--param",
        "task=person",
        "--param",
        "crf=false",
        "--ray",
        cluster.address,
        "-c",
        "2",
        "--quiet",
        *extra,
    ]
    DRIVERS.append(
        subprocess.Popen(
            cmd, cwd=REPO, env=os.environ | RAY_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    )
    return DRIVERS[-1]


def served(stderr: str) -> dict[str, int]:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("photos per Ray node: "))
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split(": ", 1)[1].split(", "))}


class Answers(BaseHTTPRequestHandler):
    """503 + Retry-After: 0 to the first two POSTs, then a PNG."""

    posts = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Answers.posts += 1
        if Answers.posts <= 2:
            body, status, kind = b'{"detail": "busy"}', 503, "application/problem+json"
        else:
            body, status, kind = b"\x89PNG fake", 200, "image/png"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("kind", ["async (local runs)", "blocking (Ray tasks)"])
def test_503_is_retried_after_retry_after(kind):
    Answers.posts = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/segment"
    try:
        if kind.startswith("async"):

            async def go():
                async with httpx.AsyncClient(timeout=10) as client:
                    return await request(client, url, {}, "p.jpg", b"jpeg")

            outcome = asyncio.run(go())
        else:
            outcome = request_blocking(url, {}, {}, 10, "p.jpg", b"jpeg")
    finally:
        server.shutdown()
        server.server_close()
    status, code, _, _, content, ext, *_ = outcome
    assert (status, code, content, ext, Answers.posts) == ("ok", 200, b"\x89PNG fake", ".png", 3)


def test_list_file(tmp_path):
    a = make_photos(tmp_path / "a", 2)
    (tmp_path / "b").mkdir()
    (tmp_path / "list.txt").write_text(f"# the catalog\na/p000.jpg\n\n{a[1]}\na/p000.jpg\n")
    assert listed(tmp_path / "list.txt") == [tmp_path / "a/p000.jpg", a[1]]
    shutil.copy(a[0], tmp_path / "b/p000.jpg")
    (tmp_path / "clash.txt").write_text("a/p000.jpg\nb/p000.jpg\n")
    with pytest.raises(ValueError, match="p000"):
        listed(tmp_path / "clash.txt")


def test_ray_run_spreads_over_nodes_and_survives_a_killed_worker(stack, cluster, tmp_path):
    start = time.monotonic()
    # 1. Both nodes take photos (with -c 2 per node, the first four go two and two); a broken photo is
    # reported with the service's answer and the run goes on.
    src, out = tmp_path / "first", tmp_path / "out-first"
    make_photos(src, 6)
    (src / "broken.jpg").write_bytes(b"this is not a photo")
    proc = batch(stack, cluster, src, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    counts = served(err)
    assert len(counts) == 2 and sum(counts.values()) == 7 and min(counts.values()) >= 2, counts
    report = {r["file"]: r for r in rows(out / "report.csv")}
    assert len(report) == 7 and [f for f, r in report.items() if r["status"] != "ok"] == ["broken.jpg"]
    assert report["broken.jpg"]["http_status"] == "415" and report["broken.jpg"]["detail"]
    assert len(list(out.glob("*.png"))) == 6

    # 2. A list file of 20 photos; the worker node is killed (SIGKILL, all its processes) mid-run.
    photos = make_photos(tmp_path / "catalog", 20)
    (tmp_path / "catalog.txt").write_text("".join(f"catalog/{p.name}\n" for p in photos))
    out = tmp_path / "out"
    # superpixels: slow enough per photo that the worker is surely busy when it dies
    proc = batch(stack, cluster, tmp_path / "catalog.txt", out, "--param", "superpixels=true")
    wait_for(lambda: len(list(out.glob("*.png"))) >= 3 or proc.poll() is not None, 120, "no results")
    assert proc.poll() is None, proc.communicate()[1]
    assert len(list(out.glob("*.png"))) < 16
    cluster.remove_node(cluster.worker, allow_graceful=False)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    report = rows(out / "report.csv")
    assert sorted(r["file"] for r in report) == sorted(p.name for p in photos)  # each once
    assert {r["status"] for r in report} == {"ok"}
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{p.stem}.png" for p in photos] + ["report.csv"])

    # 3. Resume: only the deleted results are redone (on the head, the one node left).
    for p in sorted(out.glob("*.png"))[:3]:
        p.unlink()
    proc = batch(stack, cluster, tmp_path / "catalog.txt", out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "3 done, 0 failed, 17 already done" in err
    assert len(rows(out / "report.csv")) == 23 and len(list(out.glob("*.png"))) == 20
    print(f"ray test body: {time.monotonic() - start:.1f} s")
