"""An APIRoute whose request bodies are parsed with orjson, with a careful fallback.

orjson is several times faster than the standard library on the long step lists this service
receives. It refuses ``NaN``, ``Infinity`` and ``1e400``; those go through the standard parser
instead, so pydantic can point at the exact field that is not finite. Nesting too deep for either
parser becomes a plain JSON error (422), not a 400 with no location.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


def parse_json(body: bytes) -> Any:
    """Parse a request body, raising ``json.JSONDecodeError`` for anything that is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("the JSON nests too deeply", text, 0) from None
    except ValueError as error:  # e.g. an integer with more than 4300 digits
        raise json.JSONDecodeError(str(error), text, 0) from None


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    """Route class that parses JSON bodies with :func:`parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return route
