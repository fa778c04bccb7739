"""Run a folder of photos through any Fashion Pixel endpoint: bounded concurrency, a progress bar,
resumable, and a CSV report of every file's outcome and timing.

    python -m tools.batch photos/ out/ --url http://localhost:8081/v1/cutout --param garment=top
    python -m tools.batch photos/ out/ --url http://localhost:8080/v1/segment --param format=json -c 8

Each result is written as out/<photo stem>.<png|json> through a temporary file and a rename, so an
interrupted run (Ctrl-C, a crash, a reboot) leaves only whole results; re-running the same command
skips every photo whose result exists. A failed photo (4xx/5xx, timeout) is reported and does not stop
the run; 503 answers are retried after their Retry-After. The report (default out/report.csv) gets one
row per photo attempted in this run: file, status (ok|failed), HTTP status, milliseconds, detail.
"""
import argparse
import asyncio
import csv
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
EXTENSIONS = {"image/png": ".png", "application/json": ".json"}
RETRIES_503 = 5


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def done(out: Path, photo: Path) -> bool:
    return any((out / (photo.stem + ext)).exists() for ext in EXTENSIONS.values())


async def process(client: httpx.AsyncClient, url: str, params: dict, photo: Path, out: Path) -> tuple[str, int, float, str]:
    """(status, HTTP status, ms, detail) for one photo; writes its result atomically when it succeeds."""
    start = time.perf_counter()
    data = photo.read_bytes()
    for attempt in range(RETRIES_503 + 1):
        try:
            r = await client.post(url, params=params, files={"image": (photo.name, data, "application/octet-stream")})
        except httpx.HTTPError as exc:
            return "failed", 0, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}"
        if r.status_code != 503 or attempt == RETRIES_503:
            break
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    ms = (time.perf_counter() - start) * 1000
    if r.status_code != 200:
        detail = r.json().get("detail", "") if r.headers.get("content-type", "").endswith("json") else r.text[:200]
        return "failed", r.status_code, ms, detail
    ext = EXTENSIONS.get(r.headers.get("content-type", "").split(";")[0], ".bin")
    tmp = out / f".{photo.stem}{ext}.part"
    tmp.write_bytes(r.content)
    tmp.replace(out / (photo.stem + ext))
    return "ok", 200, ms, ""


async def run(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob(".*.part"):  # whatever an interrupted run was writing
        stale.unlink()
    every = photos(args.input)
    todo = [p for p in every if not done(args.out, p)]
    skipped = len(every) - len(todo)
    params = dict(kv.split("=", 1) for kv in args.param)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    report = args.report or args.out / "report.csv"
    new_report = not report.exists()
    failures = 0
    sem = asyncio.Semaphore(args.concurrency)
    with open(report, "a", newline="") as f, tqdm(total=len(todo), unit="photo", disable=args.quiet) as bar:
        writer = csv.writer(f)
        if new_report:
            writer.writerow(["file", "status", "http_status", "ms", "detail"])
        async with httpx.AsyncClient(timeout=args.timeout, headers=headers) as client:
            async def one(photo: Path):
                nonlocal failures
                async with sem:
                    status, code, ms, detail = await process(client, args.url, params, photo, args.out)
                failures += status != "ok"
                writer.writerow([photo.name, status, code, f"{ms:.1f}", detail])
                f.flush()
                bar.update()
                bar.set_postfix(failed=failures)
            await asyncio.gather(*(one(p) for p in todo))
    print(f"{len(todo) - failures} done, {failures} failed, {skipped} already done; report: {report}", file=sys.stderr)
    return 1 if failures else 0


def _interrupt(*_):
    """SIGTERM like Ctrl-C: the requests in flight are cancelled; finished results are already in place."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path, help="folder of photos (jpg, png, webp)")
    ap.add_argument("out", type=Path, help="folder for the results and the report")
    ap.add_argument("--url", required=True, help="the endpoint, e.g. http://localhost:8080/v1/segment")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="endpoint parameter (repeatable)")
    ap.add_argument("-c", "--concurrency", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    ap.add_argument("--report", type=Path, help="CSV report (default <out>/report.csv; appended to)")
    ap.add_argument("--api-key", default=os.environ.get("FASHIONPIXEL_API_KEY"), help="X-API-Key (or $FASHIONPIXEL_API_KEY)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if any("=" not in kv for kv in args.param):
        ap.error("--param takes NAME=VALUE")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
