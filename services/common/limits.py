"""What a service accepts: a body-size limit enforced while the body arrives, and a bound on requests in
progress (503 at once instead of an unbounded queue). Both are pure ASGI middleware."""

import time

from services.common.errors import Problem, problem_response
from services.common.metrics import INFLIGHT, REJECTED


class BodyLimit:
    """Refuse bodies over the limit before they are parsed or spooled."""

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


class Load:
    """Requests in progress under the API prefix, and when the last one ended (the idle trim reads both)."""

    def __init__(self):
        self.inflight = 0
        self.last_request = 0.0


class InflightLimit:
    """At most `limit` API requests in progress; the next ones get 503 with Retry-After."""

    def __init__(self, app, service: str, prefix: str, limit: int, retry_after_s: int, load: Load):
        self.app, self.service, self.prefix, self.limit, self.load = app, service, prefix, limit, load
        self.retry_after = str(retry_after_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        if self.load.inflight >= self.limit:
            REJECTED.labels(self.service).inc()
            response = problem_response(
                503, "service saturated; retry later", "/problems/saturated", headers={"Retry-After": self.retry_after}
            )
            return await response(scope, receive, send)
        self._count(+1)
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.last_request = time.monotonic()
            self._count(-1)

    def _count(self, step: int) -> None:
        self.load.inflight += step
        INFLIGHT.labels(self.service).set(self.load.inflight)
