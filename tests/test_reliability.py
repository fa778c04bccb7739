"""Reliability under load: Triton killed mid-load, overload, graceful shutdown, and a bounded soak.

Each checks behaviour, not speed (speed is `make bench`'s job); the soak's duration is SOAK_SECONDS
(default 120)."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from runtime.stack import live_group_members, memory_table, rss_mb, tree_heap_mb, tree_mb
from services.catalog import SERVICES
from tests.conftest import ARTIFACTS, extra_segmentation_service, start_stack, wait_for
from tests.images import encode, synthetic_photo

pytestmark = pytest.mark.slow

SEGMENT_FAST = "/v1/segment?crf=false"


def photo_files(w=300, h=450, field="image"):
    return {field: ("p.jpg", encode(synthetic_photo(w, h)), "image/jpeg")}


def test_triton_killed_mid_load_gives_only_503s_then_recovers(tmp_path_factory):
    stack = start_stack("killed-mid-load", tmp_path_factory.mktemp("home"))
    statuses: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def client_loop():
        with httpx.Client(base_url=stack.service_url("segmentation"), timeout=60) as c:
            while not stop.is_set():
                r = c.post(SEGMENT_FAST, files=photo_files(200, 300))
                statuses.append((time.monotonic(), r.status_code, r.headers.get("retry-after", "")))

    try:
        threads = [threading.Thread(target=client_loop) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: sum(s == 200 for _, s, _ in statuses) >= 8, 60, "the load never got going")
        crashed = stack.triton.pid
        its_files = set(Path("/dev/shm").glob(stack.triton_shm_prefix + "*"))  # the Python backend's tensors
        assert its_files
        stack.triton.send_signal(signal.SIGKILL)  # no goodbye: a crash, not a shutdown
        stack.triton.wait()
        killed = time.monotonic()
        wait_for(lambda: any(t > killed and s == 503 for t, s, _ in statuses), 30, "Triton was down: no 503")
        stack.start_triton()
        assert not live_group_members(crashed), "the crashed Triton's backend processes were left running"
        assert not any(f.exists() for f in its_files), "the crashed Triton's /dev/shm files were left behind"
        stack.wait_until(stack.triton_url() + "/v2/health/ready", 120, stack.triton)
        back = time.monotonic()
        wait_for(
            lambda: any(t > back and s == 200 for t, s, _ in statuses),
            30,
            "no success within 30 s of Triton being back",
        )
        wait_for(lambda: sum(t > back + 2 for t, _, _ in statuses) >= 3, 60, "too few answers once recovered")
        stop.set()
        for t in threads:
            t.join(60)
        codes = {s for _, s, _ in statuses}
        assert codes <= {200, 503}, codes
        assert any(s == 503 for t, s, _ in statuses if t > killed), "Triton was down: some answers must be 503"
        assert all(ra.isdigit() for _, s, ra in statuses if s == 503), "every 503 carries Retry-After"
        assert [s for t, s, _ in statuses if t > back + 2][-3:] == [200] * 3, "fully recovered"
        assert stack.services["segmentation"].poll() is None
    finally:
        stop.set()
        stack.stop()


def test_overload_answers_503_with_retry_after(stack, tmp_path_factory):
    """Beyond MAX_INFLIGHT requests in progress, the service refuses at once instead of queueing."""
    other = extra_segmentation_service(stack, tmp_path_factory.mktemp("home"), "overload", MAX_INFLIGHT="2")
    try:
        url = other.service_url("segmentation") + "/v1/segment"  # default post-processing: slow on purpose
        files = photo_files(900, 1350)

        def one(_):
            start = time.monotonic()
            r = httpx.post(url, files=files, timeout=120)
            return r.status_code, r.headers.get("retry-after"), time.monotonic() - start

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(one, range(10)))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert len(ok) + len(refused) == len(results), results
        assert ok and refused, results
        assert all(ra and ra.isdigit() for _, ra, _ in refused)
        # refusing is immediate: every refusal came back before the first success did
        assert max(t for *_, t in refused) < min(t for *_, t in ok), results
    finally:
        other.stop()


def test_idle_service_hands_memory_back_after_a_burst(stack, tmp_path_factory):
    """A burst of large photos grows a service's heap; once idle (IDLE_TRIM_S) it gives it back."""
    other = extra_segmentation_service(stack, tmp_path_factory.mktemp("home"), "trim", IDLE_TRIM_S="1")
    try:
        url = other.service_url("segmentation") + "/v1/segment"
        proc = other.services["segmentation"]
        assert httpx.post(url, files=photo_files(300, 450), timeout=120).status_code == 200  # pools, imports
        time.sleep(3)
        before = rss_mb(proc.pid)
        peak = before
        files = photo_files(1200, 1800)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(httpx.post, url, files=files, timeout=300) for _ in range(16)]
            while not all(f.done() for f in futures):
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.05)
        assert [f.result().status_code for f in futures] == [200] * 16
        assert peak > before + 100, (before, peak)  # the burst did grow it
        # Most of it comes back once idle: without the trim a service kept ~215 MB of such a burst; with it
        # CI once saw 52 MB kept 4 s after (fragments glibc cannot return), so allow 80 and give the trim 10 s.
        deadline = time.monotonic() + 10
        while (after := rss_mb(proc.pid)) >= before + 80 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert after < before + 80, (before, peak, after)
    finally:
        other.stop()


def test_graceful_shutdown_finishes_in_flight_requests(stack, tmp_path_factory):
    other = extra_segmentation_service(stack, tmp_path_factory.mktemp("home"), "graceful")
    proc = other.services["segmentation"]
    url = other.service_url("segmentation") + "/v1/segment"
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(httpx.post, url, files=photo_files(900, 1350), timeout=120) for _ in range(3)]
        # all three in flight (the default CRF takes a while on this size)
        inflight = 'http_requests_inflight{service="segmentation"} 3.0'
        wait_for(
            lambda: inflight in httpx.get(other.service_url("segmentation") + "/metrics").text,
            30,
            "the requests never were in flight together",
        )
        proc.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 3
    assert proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
    with pytest.raises(httpx.HTTPError):  # and it no longer accepts work
        httpx.post(url, files=photo_files(), timeout=5)
    other.stop()


def test_soak_mixed_requests_no_errors_no_growth(stack):
    seconds = float(os.environ.get("SOAK_SECONDS", 120))
    photo = encode(synthetic_photo(300, 450))
    calls = [
        ("segmentation", "/v1/segment", {"image": photo}, {}),
        ("segmentation", "/v1/segment?format=json&task=person&crf=false", {"image": photo}, {}),
        ("cutout", "/v1/cutout", {"image": photo}, {}),
        ("skin-generation", "/v1/skin", {"image": photo}, {}),
        ("pose-transfer", "/v1/pose", {"image": photo}, {}),
        ("pose-transfer", "/v1/pose-transfer", {"source": photo, "target": photo}, {}),
        ("segmentation", "/v1/segment", {"image": b"not an image"}, {}),  # bad input is part of the mix
    ]
    pids = {s.name: stack.services[s.name].pid for s in SERVICES}
    failures, counts, lock = [], {}, threading.Lock()

    def worker(offset: int, until: float):
        with httpx.Client(timeout=120) as c:
            i = offset
            while time.monotonic() < until:
                service, path, files, _ = calls[i % len(calls)]
                r = c.post(
                    stack.service_url(service) + path, files={k: ("f.jpg", v, "image/jpeg") for k, v in files.items()}
                )
                expected = 415 if files.get("image") == b"not an image" else 200
                with lock:
                    counts[path] = counts.get(path, 0) + 1
                    if r.status_code != expected:
                        failures.append((path, r.status_code, r.text[:200]))
                i += 1

    def run(duration: float):
        until = time.monotonic() + duration
        threads = [threading.Thread(target=worker, args=(k, until)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration + 300)

    def memory() -> dict[str, float]:
        # Triton with its backend processes as anonymous + shared-memory PSS: they share the tensors'
        # pool, which RSS counts once per process, and library pages' PSS moves with other programs.
        # jemalloc returns freed pages after ~10 s; measure once they have been.
        time.sleep(12)
        return {name: rss_mb(pid) for name, pid in pids.items()} | {"triton": tree_heap_mb(stack.triton.pid)}

    run(min(30.0, seconds / 4))  # warm-up: allocator pools, thread pools and caches fill
    samples = [memory()]
    for _ in range(2):
        run(seconds / 2)
        samples.append(memory())
    assert failures == [], failures[:5]
    assert sum(counts.values()) > len(calls), counts
    table = "\n".join(" ".join(f"{n} {m:.0f}" for n, m in sample.items()) for sample in samples)
    # The whole stack at idle (Triton, its backend processes, the four services and any process of theirs,
    # e.g. the matting worker). PSS is what it costs the machine: RSS counts every library page and the
    # tensor pool once per process, and how many of those pages are resident differs between machines
    # (the same commit idled at 1702 MB RSS / 1107 MB PSS here and 2034 / 1175 on CI, every process's
    # shared part larger there). So PSS is guarded, at 1.1 GB (after the whole suite: 794 MB here on
    # 2026-11-30 with the arenas given back when idle and one malloc arena per service): a missing idle
    # purge (a CI run once idled ~350 MB of heap higher) or an arena kept for good crosses it. RSS, 1412 MB
    # here then (issue 23 asks 1.5 GB), is held at 2 GB: CI's machine has counted ~330 MB more RSS for
    # the same commit.
    roots = {"tritonserver": stack.triton.pid} | pids
    stack_rss, stack_pss = (sum(tree_mb(pid)[k] for pid in roots.values()) for k in (0, 1))
    breakdown = memory_table(roots)
    (ARTIFACTS / "soak.txt").write_text(
        f"{seconds} s, requests {counts}\nMB after warm-up, half, end:\n{table}\n"
        f"stack idle at the end: RSS {stack_rss:.0f} MB, PSS {stack_pss:.0f} MB\n{breakdown}\n"
    )
    idle = f"the stack idles at {stack_rss:.0f} MB RSS, {stack_pss:.0f} MB PSS:\n{breakdown}"
    assert stack_pss < 1100, idle
    assert stack_rss < 2000, idle
    # A leak grows with the requests served, so the second half grows as much as the first; pools that
    # fill to a high-water mark (ONNX Runtime's arenas in Triton's backends step up by ~40 MB once or
    # twice, Python's heaps) stop. Allowed per half: 10 %, at least 30 MB for a service (glibc trims its
    # heap in waves: ±15 MB between samples) and 60 MB for Triton. An image's worth leaked per request
    # (~0.4 MB, 150+ requests per service per half) is well over that.
    start, half, end = samples
    allowed = {n: max(0.10 * start[n], 60.0 if n == "triton" else 30.0) for n in start}
    assert all(end[n] - half[n] < allowed[n] for n in start), f"grew in the second half:\n{table}"
    assert all(end[n] - start[n] < 2 * allowed[n] for n in start), f"grew over the soak:\n{table}"
