"""What every request leaves behind: a request id (X-Request-ID, echoed or made), Server-Timing with the
stages a handler timed, Prometheus metrics by route template, and one log line."""

import asyncio
import logging
import time
import uuid

from fastapi import Request
from starlette.datastructures import Headers, MutableHeaders

from services.common.errors import problem_response
from services.common.metrics import REQUEST_SECONDS, REQUESTS, STAGE_SECONDS
from services.common.timing import Timings

log = logging.getLogger("fashionpixel")

# Paths outside the API that are their own metrics label; any other unmatched path is "unmatched".
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/demo", "/demo/config"})


def route_recorder(prefix: str):
    """A dependency of the router mounted at `prefix`: it remembers the matched route's template, a
    metrics label of bounded cardinality."""

    async def record_route(request: Request) -> None:
        path = getattr(request.scope.get("route"), "path", "")
        # FastAPI keeps an included router's routes without the prefix it was included with
        request.state.route = path if path.startswith(prefix) else prefix + path

    return record_route


def route_template(request: Request) -> str:
    path = request.url.path
    return getattr(request.state, "route", None) or (path if path in OPEN_PATHS else "unmatched")


class Observe:
    """Pure ASGI middleware, not Starlette's BaseHTTPMiddleware: that one runs every request's handler in
    a task of its own and passes the body through a queue, and an error raised while a handler read the
    body (the body limit's 413) left it as an exception group, answered 500. Here the headers are added
    to the response's start message; the app's own handlers answer a Problem (they sit inside this), and
    an error that escapes them is answered here, with the request id."""

    def __init__(self, app, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = Headers(scope=scope).get("x-request-id", "")[:128] or uuid.uuid4().hex
        timings = Timings()
        scope.setdefault("state", {})["timings"] = timings
        start = time.perf_counter()
        answer = {"status": 500, "elapsed": None}  # until the response starts (an unhandled error: 500)

        async def send_observed(message):
            if message["type"] == "http.response.start":
                elapsed = answer["elapsed"] = time.perf_counter() - start
                answer["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                stages = timings.header()
                headers["Server-Timing"] = (stages + ", " if stages else "") + f"total;dur={elapsed * 1000:.1f}"
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except asyncio.CancelledError:
            if answer["elapsed"] is None:
                answer["status"] = 499  # the request was given up (the client went away, shutdown)
            raise
        except Exception:  # the app's handlers answer a Problem (the body limit's 413 too); this is a bug
            if answer["elapsed"] is not None:
                raise  # the answer has begun: nothing to do but let the server close the connection
            log.exception("unhandled error on %s %s id=%s", scope["method"], scope["path"], request_id)
            response = problem_response(500, "internal error; the request id is in X-Request-ID")
            await response(scope, receive, send_observed)
        finally:
            elapsed = answer["elapsed"] or time.perf_counter() - start
            self._record(Request(scope), answer["status"], elapsed, timings, request_id)

    def _record(self, request: Request, status: int, elapsed: float, timings: Timings, request_id: str) -> None:
        route = route_template(request)
        REQUESTS.labels(self.service, route, request.method, str(status)).inc()
        REQUEST_SECONDS.labels(self.service, route).observe(elapsed)
        for stage, ms in timings.ms.items():
            STAGE_SECONDS.labels(self.service, stage).observe(ms / 1000)
        # Request ids and timings only: request content never goes to the log.
        log.info("%s %s %s %.1fms id=%s", request.method, route, status, elapsed * 1000, request_id)
