"""The OpenAPI document: the dialects' body schemas and how each operation authenticates.

Every operation takes an API key (:data:`takeone.edge.auth.KEY_SCHEMES`) unless it is public
(``/healthz``, signed ``/files`` links); a dialect that authenticates otherwise brings its own
schemes (:attr:`Dialect.security`), so Swagger UI's "Authorize" button offers what each
operation really accepts.

Example::

    app.openapi = lambda: build(app, dialects())
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from takeone.edge.auth import KEY_SCHEMES
from takeone.edge.dialects.base import Dialect

Operation = tuple[str, str]  # (path as in the document, lower-case method)

PUBLIC = frozenset({"/healthz", "/files/{key}"})


def owners(dialects: Iterable[Dialect]) -> dict[Operation, tuple[str, ...]]:
    """The security of each documented operation of the dialects that do not use the default
    (read from a scratch app holding only that dialect's routes)."""
    found: dict[Operation, tuple[str, ...]] = {}
    for dialect in dialects:
        if tuple(dialect.security) == tuple(KEY_SCHEMES):
            continue
        scratch = FastAPI()
        dialect.install(scratch)
        paths = get_openapi(title="scratch", version="0", routes=scratch.routes).get("paths", {})
        found.update({(path, method): tuple(dialect.security) for path, ops in paths.items() for method in ops})
    return found


def requirement(names: Iterable[str]) -> list[dict[str, list[str]]]:
    """OpenAPI's list of alternatives: any one of the named schemes will do."""
    return [{name: []} for name in names]


def build(app: FastAPI, dialects: tuple[Dialect, ...]) -> dict[str, Any]:
    """The document (built once, then cached on ``app``)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (m for dialect in dialects for m in dialect.body_schemas):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    security = owners(dialects)
    schemes = dict(KEY_SCHEMES)
    for dialect in dialects:
        schemes.update(dialect.security)
    used = {name for names in security.values() for name in names} | set(KEY_SCHEMES)
    components["securitySchemes"] = {name: dict(schemes[name]) for name in schemes if name in used}
    doc["security"] = requirement(KEY_SCHEMES)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            if path in PUBLIC:
                operation["security"] = []
            elif (path, method) in security:
                operation["security"] = requirement(security[(path, method)])
    app.openapi_schema = doc
    return doc
