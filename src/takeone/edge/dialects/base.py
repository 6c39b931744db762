"""What a dialect gives the server: its routes, its webhook events, its scopes and body schemas,
and what the playground shows of it (its name, where one of its jobs lives, its client's code).

Each dialect folder defines one :class:`Dialect` as ``SPEC`` in its ``dialect.py``; the
registry (:mod:`takeone.edge.dialects.registry`) finds them. A dialect brings its own auth
schemes and price table; it takes the server's API key and the tier prices unless it says
otherwise.

Example::

    SPEC = Dialect("mine", install=routes.install, render_webhook=webhook.render, scopes=("videos",))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from takeone.core.jobs import Job
from takeone.edge.auth import KEY_SCHEMES
from takeone.edge.background.webhooks.sender import Renderer
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.services import PriceTableKind


@dataclass(frozen=True)
class JobPlace:
    """Where one of a dialect's jobs lives in that dialect, as the key's history lists it."""

    route: str  # the request that made it, e.g. "POST /v1/predictions"
    dialect_id: str  # its id in the dialect's own answers
    status_path: str  # where the dialect answers its status, from the server's root
    endpoint: str  # the model (or endpoint, or task kind) it named


def default_place(job: Job) -> JobPlace:
    """A job of a dialect that says nothing of its own: its route and id as they are."""
    name = job.meta.get("model") or job.meta.get("endpoint")
    return JobPlace(job.route, job.id, f"/v2/requests/{job.id}/status",
                    str(name) if name else job.route)


@dataclass(frozen=True)
class Dialect:
    name: str
    install: Callable[[FastAPI], None]
    render_webhook: Renderer
    scopes: tuple[str, ...]
    body_schemas: tuple[type[BaseModel], ...] = ()
    catch_all: bool = False  # its routes answer paths no other dialect has: install it last
    # How its operations authenticate: OpenAPI security schemes by name (any one of them will
    # do); the server's own API key unless the dialect brings its own.
    security: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: KEY_SCHEMES)
    # Its price table: a class whose ``load`` reads the operator's ``--prices`` file over its
    # defaults; its routes ask ``services.prices(that class)``.
    prices: type[PriceTableKind] = TierPrices
    # What the playground shows: the dialect's name on the page, where one of its jobs lives
    # (for the key's history), and the data the page's "copy as code" needs for its client
    # (served as JSON at /playground/dialects.json; the page holds no dialect's model names).
    label: str = ""
    place: Callable[[Job], JobPlace] = default_place
    page_data: Mapping[str, Any] = field(default_factory=dict)
