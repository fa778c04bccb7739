"""RFC 9457 problem+json errors, and the handlers that turn a failure into one (an unexpected error:
services/common/observability.py, which answers it with the request id)."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with application/problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.type, self.headers, self.extra = (
            status,
            detail,
            type_,
            headers or {},
            extra or {},
        )


def problem_response(
    status: int,
    detail: str,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    extra: dict | None = None,
) -> JSONResponse:
    body = {"type": type_, "title": TITLES.get(status, "Error"), "status": status, "detail": detail} | (extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def unavailable(detail: str, retry_after: int) -> Problem:
    return Problem(503, detail, type_="/problems/unavailable", headers={"Retry-After": str(retry_after)})


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem):
        return problem_response(exc.status, exc.detail, exc.type, exc.headers, exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return problem_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem_response(
            422, "invalid request parameters", "/problems/invalid-parameters", extra={"errors": errors}
        )
