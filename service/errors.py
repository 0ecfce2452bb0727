"""Error responses in one shape: ``{"detail": [{"loc", "msg", "type"}]}`` for 422s and
``{"detail": "a sentence"}`` for every other status."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One problem with the request: where it is, what is wrong, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """The body of a 422 answer."""

    detail: list[FieldError]


class Problem(BaseModel):
    """The body of any other error answer."""

    detail: str


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors without the echoed input (which may be large)."""
    return [
        {"loc": list(error.get("loc", ())), "msg": _message(error), "type": error.get("type", "")}
        for error in errors
    ]


def _message(error: Any) -> str:
    message = str(error.get("msg", ""))
    if error.get("type") == "json_invalid" and (reason := (error.get("ctx") or {}).get("error")):
        message = f"the body is not valid JSON: {reason}"
    return message


def unprocessable(errors: Sequence[Any]) -> JSONResponse:
    """A 422 answer carrying the given errors."""
    return JSONResponse({"detail": field_errors(errors)}, status_code=422)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return unprocessable(exc.errors())


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


#: Error statuses documented on every route that takes a body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "Body, spec or step count over a published limit."},
    422: {"model": ValidationProblem, "description": "Invalid input: `loc` is the field path."},
}


class BodyLimit:
    """Answer 413, in the JSON error shape, to a body over the limit.

    A declared Content-Length over the limit is refused before reading; a body sent without one
    (chunked) is counted as it is read, and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    def _too_large(self, size: int | str) -> str:
        return (
            f"the request body is {size} bytes; this server accepts at most "
            f"{self.max_body_bytes}: send fewer steps, or a range instead of a list"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            response = JSONResponse({"detail": self._too_large(int(declared))}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise StarletteHTTPException(
                    413, self._too_large(f"more than {self.max_body_bytes}")
                )
            return message

        await self.app(scope, counting_receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the shapes above."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
