"""What a dialect gives the server: its routes, its webhook events, its scopes and body schemas.

Each dialect folder defines one :class:`Dialect` as ``SPEC`` in its ``dialect.py``; the
registry (:mod:`takeone.edge.dialects.registry`) finds them.

Example::

    SPEC = Dialect("mine", install=routes.install, render_webhook=webhook.render, scopes=("videos",))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from pydantic import BaseModel

from takeone.edge.webhooks.sender import Renderer


@dataclass(frozen=True)
class Dialect:
    name: str
    install: Callable[[FastAPI], None]
    render_webhook: Renderer
    scopes: tuple[str, ...]
    body_schemas: tuple[type[BaseModel], ...] = ()
    catch_all: bool = False  # its routes answer paths no other dialect has: install it last
    # How its operations authenticate, as names of the OpenAPI security schemes in
    # :data:`takeone.edge.openapi.SECURITY_SCHEMES` (any one of them will do).
    security: tuple[str, ...] = ("api_key", "bearer")
