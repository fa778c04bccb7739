"""The FastAPI application every service is built from.

It adds what the contract asks of every service: /healthz, /readyz, /metrics, docs; request ids and
Server-Timing; problem+json errors; API keys on /v1/*; a body-size limit enforced while the body
arrives; a bound on requests in progress (503 instead of an unbounded queue); CORS closed by default.
CPU-heavy work goes to a small thread pool (`run_cpu`) so that the event loop stays free.
"""
import asyncio
import ctypes
import ctypes.util
import hmac
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.errors import Problem, install_handlers, problem_response
from services.common.metrics import INFLIGHT, REJECTED, REQUEST_SECONDS, REQUESTS, STAGE_SECONDS
from services.common.settings import Settings, get_settings
from services.common.timing import Timings
from services.common.triton import Triton

log = logging.getLogger("fashionpixel")


async def run_cpu(request: Request, fn: Callable, *args):
    """Run blocking CPU work (numpy, OpenCV, CRF, PNG) on the service's thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app.state.executor, fn, *args)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


async def trim_when_idle(app: FastAPI, idle_s: float) -> None:
    """Give the heap back after a burst. glibc keeps freed memory for reuse (a burst of large photos left
    each service ~100 MB bigger for good); handing it back on every free instead (a fixed mmap threshold)
    cost the CRF path +60-90 ms (docs/tuning.md). So trim once the service has been idle for `idle_s`."""
    trim = _malloc_trim()
    if trim is None:
        return
    trimmed_at = 0.0
    while True:
        await asyncio.sleep(idle_s)
        quiet = time.monotonic() - app.state.last_request >= idle_s
        if app.state.inflight == 0 and quiet and app.state.last_request > trimmed_at:
            trimmed_at = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(app.state.executor, trim, 0)


def timings(request: Request) -> Timings:
    return request.state.timings


def require_api_key(request: Request) -> None:
    keys = request.app.state.settings.api_key_set
    if not keys:
        return
    given = request.headers.get("x-api-key", "")
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise Problem(401, "missing or wrong X-API-Key", type_="/problems/unauthorized",
                      headers={"WWW-Authenticate": "ApiKey"})


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over the limit before they are parsed or spooled."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise Problem(413, f"request body exceeds {self.limit} bytes", type_="/problems/too-large")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope, receive, send):
        response = problem_response(413, f"request body exceeds {self.limit} bytes", "/problems/too-large")
        await response(scope, receive, send)


API_PREFIX = "/v1"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/demo", "/demo/config"})


def record_route(request: Request) -> None:
    """Remember the matched route's template, a metrics label of bounded cardinality."""
    path = getattr(request.scope.get("route"), "path", "")
    request.state.route = path if path.startswith(API_PREFIX) else API_PREFIX + path


def route_template(request: Request) -> str:
    path = request.url.path
    return getattr(request.state, "route", None) or (path if path in OPEN_PATHS else "unmatched")


def create_app(service: str, title: str, models: list[str], router: APIRouter, description: str = "") -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.triton = Triton(settings)
        app.state.executor = ThreadPoolExecutor(settings.cpu_workers, thread_name_prefix=f"{service}-cpu")
        trimmer = asyncio.create_task(trim_when_idle(app, settings.idle_trim_s)) if settings.idle_trim_s else None
        yield
        if trimmer:
            trimmer.cancel()
        await app.state.triton.close()
        app.state.executor.shutdown(wait=True)

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.inflight = 0
    app.state.last_request = 0.0
    install_handlers(app)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        request_id = request.headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
        request.state.timings = Timings()
        start = time.perf_counter()
        limited = request.url.path.startswith(API_PREFIX + "/")
        if limited and app.state.inflight >= settings.max_inflight:
            REJECTED.labels(service).inc()
            response = problem_response(503, "service saturated; retry later", "/problems/saturated",
                                        headers={"Retry-After": str(settings.retry_after_s)})
        else:
            app.state.inflight += limited
            INFLIGHT.labels(service).set(app.state.inflight)
            try:
                response = await call_next(request)
            except Problem as exc:  # raised from the body-limit middleware's receive
                response = problem_response(exc.status, exc.detail, exc.type, exc.headers)
            finally:
                app.state.inflight -= limited
                if limited:
                    app.state.last_request = time.monotonic()
                INFLIGHT.labels(service).set(app.state.inflight)
        route = route_template(request)
        elapsed = time.perf_counter() - start
        REQUESTS.labels(service, route, request.method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(service, route).observe(elapsed)
        for stage, ms in request.state.timings.ms.items():
            STAGE_SECONDS.labels(service, stage).observe(ms / 1000)
        response.headers["X-Request-ID"] = request_id
        server_timing = request.state.timings.header()
        response.headers["Server-Timing"] = (server_timing + ", " if server_timing else "") + f"total;dur={elapsed * 1000:.1f}"
        # Request ids and timings only: request content never goes to the log.
        log.info("%s %s %s %.1fms id=%s", request.method, route, response.status_code, elapsed * 1000, request_id)
        return response

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "X-Request-ID", "Content-Type"],
                           expose_headers=["X-Request-ID", "Server-Timing"])

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["ops"])
    async def readyz():
        ready, reason = await app.state.triton.readiness(models)
        body = {"ready": ready, "service": service, "models": models, "reason": reason}
        return JSONResponse(body, status_code=200 if ready else 503,
                            headers=None if ready else {"Retry-After": str(settings.retry_after_s)})

    @app.get("/metrics", tags=["ops"])
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(record_route), Depends(require_api_key)])
    return app
