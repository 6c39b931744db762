"""SQL text the two stores share, written once with the driver's placeholder (``?`` for
SQLite, ``%s`` for psycopg).

Example::

    sql, params = listing_query("?", key_id, "openai", limit=20)
    rows = conn.execute(sql, params).fetchall()
"""

from __future__ import annotations

from typing import Any


def listing_query(mark: str, key_id: str, dialect: str, limit: int, offset: int = 0, after: str | None = None,
                  ascending: bool = False, route: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """One dialect's jobs of a key (of one ``route`` if given), newest first (or oldest first),
    skipping ``offset`` or starting after the job ``after`` (a cursor)."""
    order, op = ("ASC", ">") if ascending else ("DESC", "<")
    where, params = f"key_id = {mark} AND dialect = {mark}", [key_id, dialect]
    if route is not None:
        where += f" AND endpoint = {mark}"
        params.append(route)
    if after is not None:
        where += f" AND (created_at, id) {op} (SELECT created_at, id FROM jobs WHERE id = {mark})"
        params.append(after)
    sql = (f"SELECT * FROM jobs WHERE {where} ORDER BY created_at {order}, id {order}"
           f" LIMIT {mark} OFFSET {mark}")
    return sql, (*params, limit, offset)
