"""Run a folder of photos through any Fashion Pixel endpoint: bounded concurrency, a progress bar,
resumable, and a CSV report of every file's outcome and timing.

    python -m tools.batch photos/ out/ --url http://localhost:8081/v1/cutout --param garment=top
    python -m tools.batch photos/ out/ --url http://localhost:8080/v1/segment --param format=json -c 8
    python -m tools.batch catalog.txt out/ --url http://segmentation:8080/v1/segment --ray head:6379 -c 4

The input is a folder (its jpg/png/webp files) or a list file: one photo path a line, relative to the
list file's folder unless absolute; blank lines and lines starting with # are skipped.

Each result is written as out/<photo stem>.<png|json> through a temporary file and a rename, so an
interrupted run (Ctrl-C, a crash, a reboot) leaves only whole results; re-running the same command
skips every photo whose result exists. A failed photo (4xx/5xx, timeout) is reported and does not stop
the run; 503 answers are retried after their Retry-After. The report (default out/report.csv) gets one
row per photo attempted in this run: file, status (ok|failed), HTTP status, milliseconds, detail, and
how far to trust the result: quality (0..1) and needs_review (true|false), as the service said in its
X-Quality / X-Needs-Review headers (or a JSON result's fields). --review-dir DIR also puts every
result that needs review into DIR (same names), for a person to look at.

--ray ADDRESS runs the requests as tasks on a Ray cluster (the head's host:port; run this on a machine
of the cluster, e.g. the head, as any Ray driver): this process reads the photos, keeps at most -c
requests in flight on each node that has CPUs, writes the results and the report exactly as above. A
task whose worker or node dies is run again by Ray (on another node when its node is gone), so a lost
node costs time, not photos. The nodes need only Ray (the task uses `requests`, a dependency of Ray)
and the same Python minor version as this process; they must reach the --url, the photos need not be
on them.
"""

import argparse
import asyncio
import csv
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import httpx
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
EXTENSIONS = {"image/png": ".png", "application/json": ".json"}
RETRIES_503 = 5
RAY_TASK_RETRIES = 3  # reruns of a task whose worker process or node died
RAY_NODES_EVERY_S = 2.0  # how often the driver re-reads which nodes are alive


class Outcome(NamedTuple):
    status: str  # ok | failed
    http_status: int
    ms: float
    detail: str
    content: bytes | None = None  # the result
    ext: str = ""  # its extension
    quality: str = ""  # X-Quality as the service sent it ("" when it did not)
    needs_review: str = ""  # true | false | ""


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def listed(list_file: Path) -> list[Path]:
    """The photos a list file names, in its order; a duplicate stem is an error (results are <stem>.*)."""
    out, stems = [], {}
    for line in list_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        if path.stem in stems and stems[path.stem] != path:
            raise ValueError(f"{list_file}: {stems[path.stem]} and {path} would both write {path.stem}.*")
        if path.stem not in stems:
            stems[path.stem] = path
            out.append(path)
    return out


def inputs(path: Path) -> list[Path]:
    return photos(path) if path.is_dir() else listed(path)


def done(out: Path, photo: Path) -> bool:
    return any((out / (photo.stem + ext)).exists() for ext in EXTENSIONS.values())


def _outcome(r, start: float) -> Outcome:
    """The outcome of the final answer `r` (an httpx or a requests response: the same attributes)."""
    ms = (time.perf_counter() - start) * 1000
    json_body = r.headers.get("content-type", "").endswith("json")
    if r.status_code != 200:
        detail = r.json().get("detail", "") if json_body else r.text[:200]
        return Outcome("failed", r.status_code, ms, str(detail))
    quality, review = r.headers.get("x-quality", ""), r.headers.get("x-needs-review", "")
    if json_body and not quality:
        body = r.json()
        if isinstance(body, dict) and "quality" in body:
            quality, review = str(body["quality"]), str(body.get("needs_review", "")).lower()
    ext = EXTENSIONS.get(r.headers.get("content-type", "").split(";")[0], ".bin")
    return Outcome("ok", 200, ms, "", r.content, ext, quality, review)


def _retry_after(r, attempt: int) -> float | None:
    """Seconds to wait before asking again, or None when `r` is the final answer."""
    if r.status_code != 503 or attempt == RETRIES_503:
        return None
    return float(r.headers.get("retry-after", "1"))


async def request(client: httpx.AsyncClient, url: str, params: dict, name: str, data: bytes) -> Outcome:
    start = time.perf_counter()
    for attempt in range(RETRIES_503 + 1):
        try:
            r = await client.post(url, params=params, files={"image": (name, data, "application/octet-stream")})
        except httpx.HTTPError as exc:
            return Outcome("failed", 0, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}")
        if (wait := _retry_after(r, attempt)) is None:
            break
        await asyncio.sleep(wait)
    return _outcome(r, start)


def request_blocking(url: str, params: dict, headers: dict, timeout: float, name: str, data: bytes) -> Outcome:
    """`request` for a Ray task: blocking, with `requests` (Ray's own dependency, on every node)."""
    import requests

    start = time.perf_counter()
    with requests.Session() as session:
        for attempt in range(RETRIES_503 + 1):
            try:
                r = session.post(
                    url,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    files={"image": (name, data, "application/octet-stream")},
                )
            except requests.RequestException as exc:
                return Outcome("failed", 0, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}")
            if (wait := _retry_after(r, attempt)) is None:
                break
            time.sleep(wait)
    return _outcome(r, start)


def write_result(out: Path, photo: Path, content: bytes, ext: str) -> None:
    tmp = out / f".{photo.stem}{ext}.part"
    tmp.write_bytes(content)
    tmp.replace(out / (photo.stem + ext))


def keep(outcome: Outcome, photo: Path, out: Path, review_dir: Path | None) -> None:
    """A result into `out`, and into `review_dir` too when it needs review (both atomically)."""
    if outcome.content is None:
        return
    if review_dir is not None and outcome.needs_review == "true":
        write_result(review_dir, photo, outcome.content, outcome.ext)
    write_result(out, photo, outcome.content, outcome.ext)


async def process(
    client: httpx.AsyncClient, url: str, params: dict, photo: Path, out: Path, review_dir: Path | None = None
) -> Outcome:
    """One photo's outcome; its result is written (atomically) when it succeeds."""
    try:
        data = photo.read_bytes()
    except OSError as exc:  # a list file's photo that is gone
        return Outcome("failed", 0, 0.0, f"{type(exc).__name__}: {exc}")
    outcome = await request(client, url, params, photo.name, data)
    keep(outcome, photo, out, review_dir)
    return outcome


class Report:
    """The CSV report and the progress bar, shared by the local and the Ray runs."""

    def __init__(self, path: Path, total: int, quiet: bool):
        self.path, self.failures = path, 0
        new = not path.exists()
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(["file", "status", "http_status", "ms", "detail", "quality", "needs_review"])
        self.bar = tqdm(total=total, unit="photo", disable=quiet)

    def row(self, photo: Path, o: Outcome) -> None:
        self.failures += o.status != "ok"
        self.writer.writerow([photo.name, o.status, o.http_status, f"{o.ms:.1f}", o.detail, o.quality, o.needs_review])
        self.file.flush()
        self.bar.update()
        self.bar.set_postfix(failed=self.failures)

    def close(self) -> None:
        self.bar.close()
        self.file.close()


async def run_local(args, todo: list[Path], params: dict, headers: dict, report: Report) -> None:
    sem = asyncio.Semaphore(args.concurrency)
    async with httpx.AsyncClient(timeout=args.timeout, headers=headers) as client:

        async def one(photo: Path):
            async with sem:
                outcome = await process(client, args.url, params, photo, args.out, args.review_dir)
            report.row(photo, outcome)

        await asyncio.gather(*(one(p) for p in todo))


def _ray_task(url: str, params: dict, headers: dict, timeout: float, name: str, data: bytes) -> tuple[Outcome, str]:
    import ray

    return request_blocking(url, params, headers, timeout, name, data), ray.get_runtime_context().get_node_id()


def run_ray(args, todo: list[Path], params: dict, headers: dict, report: Report) -> Counter:
    """The same job as run_local, each request a Ray task; returns how many photos each node served."""
    if not todo:
        return Counter()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray reports usage to its makers unless told not to
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # Ship this module's functions to the workers by value: the nodes need Ray, not this repository.
    if __name__ != "__main__":  # (__main__'s functions always travel by value)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address=args.ray, log_to_driver=False, logging_level="WARNING")
    # num_cpus=0: a task waits on the network; the bound per node is ours, not Ray's CPU count.
    task = ray.remote(num_cpus=0, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_ray_task)
    pending = list(reversed(todo))
    inflight: dict = {}  # ObjectRef -> (photo, node it was sent to)
    load: Counter = Counter()  # in flight per node
    served: Counter = Counter()  # photos done per node that ran them
    nodes: list[str] = []
    seen_nodes = 0.0
    try:
        while pending or inflight:
            if time.monotonic() - seen_nodes > RAY_NODES_EVERY_S:
                nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
                seen_nodes = time.monotonic()
                if not nodes and not inflight:
                    sys.exit(f"no alive Ray node with CPUs at {args.ray}; results so far are in {args.out}")
            while pending and nodes:
                node = min(nodes, key=lambda n: load[n])
                if load[node] >= args.concurrency:
                    break
                photo = pending.pop()
                try:
                    data = photo.read_bytes()
                except OSError as exc:
                    report.row(photo, Outcome("failed", 0, 0.0, f"{type(exc).__name__}: {exc}"))
                    continue
                # soft: should the node die, Ray runs the task again elsewhere.
                ref = task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True)).remote(
                    args.url, params, headers, args.timeout, photo.name, data
                )
                inflight[ref] = photo, node
                load[node] += 1
            if not inflight:
                time.sleep(0.2)
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                photo, node = inflight.pop(ref)
                load[node] -= 1
                try:
                    outcome, ran_on = ray.get(ref)
                    outcome = Outcome(*outcome)  # the workers' copy of the class → this one
                except ray.exceptions.RayError as exc:  # its worker died RAY_TASK_RETRIES + 1 times
                    outcome = Outcome("failed", 0, 0.0, " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
                    ran_on = node
                keep(outcome, photo, args.out, args.review_dir)
                served[ran_on] += 1
                report.row(photo, outcome)
    finally:
        for ref in inflight:
            ray.cancel(ref, force=False)
        ray.shutdown()
    return served


def run(args, every: list[Path]) -> int:
    for folder in filter(None, (args.out, args.review_dir)):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*.part"):  # whatever an interrupted run was writing
            stale.unlink()
    todo = [p for p in every if not done(args.out, p)]
    skipped = len(every) - len(todo)
    params = dict(kv.split("=", 1) for kv in args.param)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    report = Report(args.report or args.out / "report.csv", len(todo), args.quiet)
    try:
        if args.ray:
            served = run_ray(args, todo, params, headers, report)
            if served:
                print(
                    "photos per Ray node: " + ", ".join(f"{n}={c}" for n, c in sorted(served.items())), file=sys.stderr
                )
        else:
            asyncio.run(run_local(args, todo, params, headers, report))
    finally:
        report.close()
    failures = report.failures
    print(
        f"{len(todo) - failures} done, {failures} failed, {skipped} already done; report: {report.path}",
        file=sys.stderr,
    )
    return 1 if failures else 0


def _interrupt(*_):
    """SIGTERM like Ctrl-C: the requests in flight are cancelled; finished results are already in place."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path, help="folder of photos (jpg, png, webp), or a list file of photo paths")
    ap.add_argument("out", type=Path, help="folder for the results and the report")
    ap.add_argument("--url", required=True, help="the endpoint, e.g. http://localhost:8080/v1/segment")
    ap.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="endpoint parameter (repeatable)"
    )
    ap.add_argument("-c", "--concurrency", type=int, default=4, help="requests in flight (per node with --ray)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    ap.add_argument("--report", type=Path, help="CSV report (default <out>/report.csv; appended to)")
    ap.add_argument("--review-dir", type=Path, help="also put the results that need review (X-Needs-Review: true) here")
    ap.add_argument(
        "--api-key", default=os.environ.get("FASHIONPIXEL_API_KEY"), help="X-API-Key (or $FASHIONPIXEL_API_KEY)"
    )
    ap.add_argument("--ray", metavar="ADDRESS", help="run the requests on this Ray cluster (head host:port, or auto)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if any("=" not in kv for kv in args.param):
        ap.error("--param takes NAME=VALUE")
    if args.concurrency < 1:
        ap.error("-c must be at least 1")
    try:
        every = inputs(args.input)
    except (OSError, ValueError) as exc:
        ap.error(str(exc))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args, every)
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
