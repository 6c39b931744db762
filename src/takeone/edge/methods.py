"""Which methods a path answers, from every route that matches it (not only the first).

Starlette's 405 names the methods of the first route whose path matches, so a path served by
two routes (``GET`` and ``DELETE /v1/videos/{id}``) was said to allow one of them; and a
catch-all (``POST /v1/{slug}`` for unknown models) turned ``POST /v1/get-user-credits`` into
a 404. Here every route counts, catch-alls excepted, so a 405's ``Allow`` is complete, an
``OPTIONS`` request gets a 204 with it, and a catch-all answers 405 where a real route holds
the path.

Example::

    allowed = allowed_methods(request)           # ["DELETE", "GET"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route

_CATCH_ALLS: set[Callable[..., Any]] = set()


def catch_all(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``endpoint`` as a catch-all: it never counts as serving a path."""
    _CATCH_ALLS.add(endpoint)
    return endpoint


def _routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    for route in routes:
        if isinstance(route, Route):
            yield route
        elif isinstance(route, Mount) and route.routes:
            yield from _routes(route.routes)
        elif (inner := getattr(route, "original_router", None)) is not None:  # include_router
            yield from _routes(inner.routes)


def allowed_methods(request: Request) -> list[str]:
    """The methods the request's path is served with (empty: no route holds it)."""
    found: set[str] = set()
    for route in _routes(request.app.routes):
        if route.methods and route.endpoint not in _CATCH_ALLS and \
                route.matches(dict(request.scope))[0] is not Match.NONE:
            found |= route.methods
    return sorted(found)


def refuse_if_served(request: Request) -> None:
    """In a catch-all: a 405 naming the methods if a real route holds this path."""
    allowed = allowed_methods(request)
    if allowed and request.method not in allowed:
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})
