"""A tighter body limit for one route: ``POST /jobs`` (its config is stored with every job).

The lead's :class:`service.errors.BodyLimit` caps every request; this applies it, with its own
limit and advice, to the requests of one method and path only. The answer is the same 413 in the
same JSON shape.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import BodyLimit


class RouteBodyLimit(BodyLimit):
    """413 for a ``method path`` request whose body is over ``max_body_bytes``."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, *, method: str, path: str, advice: str
    ) -> None:
        super().__init__(app, max_body_bytes)
        self.method, self.path, self.advice = method, path, advice

    def _too_large(self, size: int | str) -> str:
        return (
            f"the request body is {size} bytes; {self.method} {self.path} accepts at most "
            f"{self.max_body_bytes}: {self.advice}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == self.method
            and scope["path"].rstrip("/") == self.path
        ):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)
