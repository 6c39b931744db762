"""Every dialect the server speaks, found as the folders under ``edge/dialects/`` that have a
``dialect.py`` (a new dialect is a folder: nothing here names one).

Routes are installed in name order, except that a dialect with a catch-all route (the
Segmind dialect's ``POST /v1/{slug}`` answers every unknown model name) comes last.

Example::

    for dialect in dialects():
        dialect.install(app)
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path

from takeone.edge.background.webhooks.sender import Renderer
from takeone.edge.dialects.base import Dialect

FOLDER = Path(__file__).parent


@functools.cache
def dialects() -> tuple[Dialect, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules([str(FOLDER)]), key=lambda i: i.name):
        if info.ispkg and (FOLDER / info.name / "dialect.py").exists():
            module = importlib.import_module(f"{__package__}.{info.name}.dialect")
            found.append(module.SPEC)
    return tuple(sorted(found, key=lambda d: d.catch_all))


def renderers() -> Mapping[str, Renderer]:
    return {d.name: d.render_webhook for d in dialects()}


def known_scopes() -> tuple[str, ...]:
    """Every route scope, and ``health`` (the details of ``/healthz``)."""
    return (*(scope for d in dialects() for scope in d.scopes), "health")
