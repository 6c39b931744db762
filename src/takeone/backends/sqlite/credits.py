"""The credit ledger in SQLite, always inside the caller's transaction.

Amounts are stored as integer micro-credits so that sums are exact; clients see floats.
A job's price moves through exactly one of two paths, each guarded so it happens once:

    reserve (on submit) -> commit  (video delivered)
                        -> release (failed, cancelled, timed out: nothing charged)
"""

from __future__ import annotations

import sqlite3

from takeone.core.accounts import from_micro
from takeone.core.errors import InsufficientCredits, InvalidRequest


def _log(conn: sqlite3.Connection, key_id: str, job_id: str | None, kind: str, amount: int, now: float) -> None:
    conn.execute(
        "INSERT INTO ledger (key_id, job_id, kind, amount, created_at) VALUES (?, ?, ?, ?, ?)",
        (key_id, job_id, kind, amount, now),
    )


def grant(conn: sqlite3.Connection, key_id: str, amount: int, now: float) -> None:
    """Add (or with a negative amount, remove) credits; a balance never goes below zero."""
    cur = conn.execute("UPDATE api_keys SET balance = balance + ? WHERE id = ? AND balance + ? >= 0",
                       (amount, key_id, amount))
    if cur.rowcount != 1:
        row = conn.execute("SELECT balance FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        balance = from_micro(row["balance"]) if row else 0.0
        raise InvalidRequest("credits", from_micro(amount),
                             f"would make the balance negative (it is {balance:g})")
    _log(conn, key_id, None, "grant", amount, now)


def reserve(conn: sqlite3.Connection, key_id: str, job_id: str, amount: int, now: float) -> None:
    """Hold ``amount`` for a job; raise :class:`InsufficientCredits` if the balance is short."""
    cur = conn.execute(
        "UPDATE api_keys SET balance = balance - ?, reserved = reserved + ? "
        "WHERE id = ? AND balance >= ?",
        (amount, amount, key_id, amount),
    )
    if cur.rowcount != 1:
        row = conn.execute("SELECT balance FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        balance = from_micro(row["balance"]) if row else 0.0
        raise InsufficientCredits(
            f"insufficient credits: this request costs {from_micro(amount)} and the key has {balance}"
        )
    _log(conn, key_id, job_id, "reserve", -amount, now)


def settle(conn: sqlite3.Connection, job_id: str, outcome: str, now: float) -> bool:
    """Commit or release a job's reservation exactly once; return False if already settled."""
    assert outcome in ("committed", "released")
    cur = conn.execute(
        "UPDATE jobs SET charge = ? WHERE id = ? AND charge = 'reserved'", (outcome, job_id)
    )
    if cur.rowcount != 1:
        return False
    row = conn.execute("SELECT key_id, price FROM jobs WHERE id = ?", (job_id,)).fetchone()
    refund = row["price"] if outcome == "released" else 0
    conn.execute(
        "UPDATE api_keys SET reserved = reserved - ?, balance = balance + ? WHERE id = ?",
        (row["price"], refund, row["key_id"]),
    )
    _log(conn, row["key_id"], job_id, "release" if refund else "commit", refund, now)
    return True
