"""What every request leaves behind: a request id (X-Request-ID, echoed or made), Server-Timing with the
stages a handler timed, Prometheus metrics by route template, and one log line."""

import logging
import time
import uuid

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware

from services.common.errors import Problem, problem_response
from services.common.metrics import REQUEST_SECONDS, REQUESTS, STAGE_SECONDS
from services.common.timing import Timings

log = logging.getLogger("fashionpixel")

# Paths outside the API that are their own metrics label; any other unmatched path is "unmatched".
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/demo", "/demo/config"})


def route_recorder(prefix: str):
    """A dependency of the router mounted at `prefix`: it remembers the matched route's template, a
    metrics label of bounded cardinality."""

    def record_route(request: Request) -> None:
        path = getattr(request.scope.get("route"), "path", "")
        # FastAPI keeps an included router's routes without the prefix it was included with
        request.state.route = path if path.startswith(prefix) else prefix + path

    return record_route


def route_template(request: Request) -> str:
    path = request.url.path
    return getattr(request.state, "route", None) or (path if path in OPEN_PATHS else "unmatched")


class Observe(BaseHTTPMiddleware):
    def __init__(self, app, service: str):
        super().__init__(app)
        self.service = service

    async def dispatch(self, request: Request, call_next):
        request_id = request.headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
        timings = request.state.timings = Timings()
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Problem as exc:  # raised from the body limit's receive
            response = problem_response(exc.status, exc.detail, exc.type, exc.headers)
        route = route_template(request)
        elapsed = time.perf_counter() - start
        REQUESTS.labels(self.service, route, request.method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(self.service, route).observe(elapsed)
        for stage, ms in timings.ms.items():
            STAGE_SECONDS.labels(self.service, stage).observe(ms / 1000)
        response.headers["X-Request-ID"] = request_id
        stages = timings.header()
        response.headers["Server-Timing"] = (stages + ", " if stages else "") + f"total;dur={elapsed * 1000:.1f}"
        # Request ids and timings only: request content never goes to the log.
        log.info("%s %s %s %.1fms id=%s", request.method, route, response.status_code, elapsed * 1000, request_id)
        return response
