"""The FastAPI application every service is built from.

It adds what the contract asks of every service: /healthz, /readyz, /metrics, docs; request ids,
Server-Timing, metrics and a log line (observability.py); problem+json errors (errors.py); API keys on
/v1/* (keys.py); the body-size and in-progress limits (limits.py); CORS closed by default; and the heap
kept while busy and handed back once idle (idle_trim.py). Handlers get the settings
(`Depends(current_settings)`) and the pipeline's network, thread pool and timings (`Depends(pipeline)`) as
dependencies.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.catalog import ServiceInfo
from services.common import review
from services.common.errors import install_handlers
from services.common.idle_trim import keep_freed_memory, trim_when_idle
from services.common.keys import require_api_key
from services.common.limits import BodyLimit, InflightLimit, Load
from services.common.observability import Observe, route_recorder
from services.common.settings import Settings, get_settings
from services.common.triton import Triton

API_PREFIX = "/v1"


def create_app(
    info: ServiceInfo,
    title: str,
    router: APIRouter,
    description: str = "",
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """The service's app; `on_shutdown` stops what it started besides the common parts (a worker process)."""
    service = info.name
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    load = Load()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.triton = Triton(settings, owner=service)
        app.state.executor = ThreadPoolExecutor(settings.cpu_workers, thread_name_prefix=f"{service}-cpu")
        trimmer = (
            asyncio.create_task(
                trim_when_idle(load, app.state.executor, settings.idle_trim_s, app.state.triton.give_back_idle_regions)
            )
            if settings.idle_trim_s
            else None
        )
        if trimmer and settings.keep_freed_memory:  # kept while busy only where the idle trim gives it back
            keep_freed_memory()
        yield
        if trimmer:
            trimmer.cancel()
        await app.state.triton.close()
        app.state.executor.shutdown(wait=True)
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.load = load
    install_handlers(app)
    add_middleware(app, service, settings, load)
    add_ops_routes(app, service, [m.name for m in info.models], settings)
    app.include_router(
        router, prefix=API_PREFIX, dependencies=[Depends(route_recorder(API_PREFIX)), Depends(require_api_key)]
    )
    return app


def add_middleware(app: FastAPI, service: str, settings: Settings, load: Load) -> None:
    """The last added runs first: CORS, the body limit, observability, the in-progress limit."""
    app.add_middleware(
        InflightLimit,
        service=service,
        prefix=API_PREFIX + "/",
        limit=settings.max_inflight,
        retry_after_s=settings.retry_after_s,
        load=load,
    )
    app.add_middleware(Observe, service=service)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "X-Request-ID", "Content-Type"],
            expose_headers=["X-Request-ID", "Server-Timing", *review.HEADERS],
        )


def add_ops_routes(app: FastAPI, service: str, models: list[str], settings: Settings) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["ops"])
    async def readyz():
        ready, reason = await app.state.triton.readiness(models)
        body = {"ready": ready, "service": service, "models": models, "reason": reason}
        return JSONResponse(
            body,
            status_code=200 if ready else 503,
            headers=None if ready else {"Retry-After": str(settings.retry_after_s)},
        )

    @app.get("/metrics", tags=["ops"])
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
