"""What every request leaves behind (services/common/observability.py), on the services' own middleware
stack around a small in-process router: no Triton needed."""

import asyncio
import logging
import os

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import REGISTRY

from services.common.app import API_PREFIX, add_middleware
from services.common.errors import install_handlers
from services.common.limits import Load
from services.common.observability import route_recorder
from services.common.settings import Settings

SERVICE = "observed"


def app_under_test() -> FastAPI:
    router = APIRouter()

    @router.post("/echo/{name}")
    async def echo(name: str, request: Request):
        with request.state.timings.stage("infer"):
            body = await request.body()
        return {"name": name, "bytes": len(body)}

    @router.post("/broken")
    async def broken():
        raise RuntimeError("a bug")

    @router.post("/slow")
    async def slow():
        await asyncio.sleep(30)

    app = FastAPI()
    install_handlers(app)
    add_middleware(app, SERVICE, Settings(max_upload_bytes=1000), Load())
    app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(route_recorder(API_PREFIX))])
    return app


def requests_counted(route: str, status: str) -> float:
    labels = {"service": SERVICE, "route": route, "method": "POST", "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def post(*args, **kwargs) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=app_under_test())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(*args, **kwargs)

    return asyncio.run(go())


def test_request_id_timings_and_metrics_by_route_template():
    before = requests_counted("/v1/echo/{name}", "200")
    r = post("/v1/echo/a", content=b"x" * 10, headers={"X-Request-ID": "abc-1"})
    assert r.status_code == 200 and r.json() == {"name": "a", "bytes": 10}
    assert r.headers["X-Request-ID"] == "abc-1"
    stages = dict(part.split(";dur=") for part in r.headers["Server-Timing"].split(", "))
    assert set(stages) == {"infer", "total"} and 0 <= float(stages["infer"]) <= float(stages["total"])
    made = post("/v1/echo/b").headers["X-Request-ID"]
    assert len(made) == 32 and made != "abc-1"  # made when the client sent none
    assert requests_counted("/v1/echo/{name}", "200") == before + 2  # the template, not /v1/echo/a


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives():
    async def chunks():  # no Content-Length: the limit is counted as the body arrives
        for _ in range(12):  # 1.2 MB, over the body limit (two 1000-byte uploads and 1 MB of form)
            yield b"x" * 100_000

    before = requests_counted("/v1/echo/{name}", "413")
    r = post("/v1/echo/c", content=chunks())
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413 and r.headers["X-Request-ID"]
    assert requests_counted("/v1/echo/{name}", "413") == before + 1


def test_an_unexpected_error_is_a_problem_with_the_request_id_and_is_logged(caplog):
    before = requests_counted("/v1/broken", "500")
    with caplog.at_level(logging.ERROR, logger="fashionpixel"):
        r = post("/v1/broken", headers={"X-Request-ID": "bug-7"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 500 and r.headers["X-Request-ID"] == "bug-7"
    assert any("bug-7" in m and rec.exc_info for rec in caplog.records for m in [rec.getMessage()])
    assert requests_counted("/v1/broken", "500") == before + 1


def test_a_request_given_up_is_counted_as_499_not_as_an_error():
    async def go():
        transport = httpx.ASGITransport(app=app_under_test())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            call = asyncio.create_task(client.post("/v1/slow"))
            await asyncio.sleep(0.2)
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)

    before = requests_counted("/v1/slow", "499"), requests_counted("/v1/slow", "500")
    asyncio.run(go())
    assert (requests_counted("/v1/slow", "499"), requests_counted("/v1/slow", "500")) == (before[0] + 1, before[1])


def test_every_dependency_of_the_services_runs_on_the_event_loop(monkeypatch):
    """FastAPI runs a plain function's dependency on a worker thread: a thread hop per dependency and
    request, for what takes microseconds. Each service's API request (here one without a photo, a 422)
    solves its dependencies without one."""
    import importlib

    import fastapi.dependencies.utils as solving

    hops = []
    real = solving.run_in_threadpool

    async def recorded(call, *args, **kwargs):
        hops.append(getattr(call, "__name__", repr(call)))
        return await real(call, *args, **kwargs)

    monkeypatch.setattr(solving, "run_in_threadpool", recorded)
    for name, path in (("segmentation", "segment"), ("cutout", "cutout"), ("skin", "skin"), ("pose_transfer", "pose")):
        app = importlib.import_module(f"services.{name}.app").app
        app.state.triton = app.state.executor = None  # not started: the request ends before it needs them

        async def go(app=app, path=path):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.post(f"/v1/{path}", data={"x": "1"})

        assert asyncio.run(go()).status_code in (400, 415, 422), name
    assert hops == []


def test_opencv_threads_sleep_in_a_service_process():
    """The services' processes start with OpenCV's pool told not to spin (services/__init__.py), before
    cv2 is imported: a fresh interpreter importing a service sees both settings."""
    import subprocess
    import sys

    code = (
        "import os, sys; import services.cutout.app; assert 'cv2' in sys.modules; "
        "print(os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER'], os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_THREAD_POOL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0", "0"]
