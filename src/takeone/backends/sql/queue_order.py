"""The order in which workers take queued jobs, the same in every SQL store: round-robin
across keys.

The next job is the oldest queued job of the key served least recently (a key that has never
had a job started comes first), so a key with a long backlog gets one job started, then every
other waiting key gets one, and so on: another key's first job waits for at most one job per
worker. ``FAIR_ORDER`` is an ``ORDER BY`` clause over ``jobs j``; the subquery uses the
``jobs_key_started`` index.

Example::

    conn.execute(f"SELECT id FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER} LIMIT 1")
"""

from __future__ import annotations

from typing import Final

FAIR_ORDER: Final = ("ORDER BY (SELECT MAX(r.started_at) FROM jobs r WHERE r.key_id = j.key_id) ASC NULLS FIRST,"
                     " j.created_at, j.id")
