"""The order in which workers take queued jobs, the same in every SQL store: round-robin
across keys.

The next job is the oldest queued job of the key served least recently (a key that has never
had a job started comes first), so a key with a long backlog gets one job started, then every
other waiting key gets one, and so on: another key's first job waits for at most one job per
worker. ``FAIR_ORDER`` is an ``ORDER BY`` clause over ``jobs j``; the subquery uses the
``jobs_key_started`` index. :func:`round_robin_position` is where a queued job stands in
that order.

Example::

    conn.execute(f"SELECT id FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER} LIMIT 1")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

FAIR_ORDER: Final = ("ORDER BY (SELECT MAX(r.started_at) FROM jobs r WHERE r.key_id = j.key_id) ASC NULLS FIRST,"
                     " j.created_at, j.id")


@dataclass(frozen=True)
class WaitingKey:
    """A key with queued jobs, where it stands in the rotation: when one of its jobs last
    started (None: never), its oldest queued job, and how many it has queued."""

    key_id: str
    last_started: float | None
    head: tuple[float, str]
    queued: int

    def turn(self) -> tuple[bool, float, float, str]:
        """Sorts as ``FAIR_ORDER`` serves keys: never started first, then by last start, then
        by the oldest queued job."""
        return (self.last_started is not None, self.last_started or 0.0, *self.head)


def round_robin_position(rank: int, mine: WaitingKey, others: Iterable[WaitingKey]) -> int:
    """The place in the queue of the ``rank``-th queued job of ``mine`` (1: served next) when
    claims go round-robin across keys as ``FAIR_ORDER`` orders them, if nothing else is
    submitted or requeued meanwhile: every waiting key gets one job a round, so the job goes
    in round ``rank``, after up to ``rank`` jobs of each key whose turn comes before its key's
    and up to ``rank - 1`` of every other.

    Example::

        round_robin_position(2, a, [b])   # b never started: b's 1st, a's 1st, b's 2nd, then it: 4
    """
    ahead = rank - 1
    for other in others:
        rounds = rank if other.turn() < mine.turn() else rank - 1
        ahead += min(other.queued, rounds)
    return ahead + 1
