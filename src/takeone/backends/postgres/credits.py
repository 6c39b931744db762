"""The credit ledger in PostgreSQL, always inside the caller's transaction.

The same rules as the embedded store (:mod:`takeone.backends.sqlite.credits`): integer
micro-credits, and a job's price reserved on submit, then committed or released exactly once
(the ``charge`` column moves away from ``reserved`` only once). Callers lock the key's row
first, so every balance check holds across replicas.

Example::

    with transaction(pool) as conn:
        reserve(conn, key_id, job_id, 2_500_000, now)   # 2.5 credits
"""

from __future__ import annotations

from takeone.backends.postgres.db import Conn
from takeone.core.accounts import from_micro
from takeone.core.errors import InsufficientCredits, InvalidRequest


def _log(conn: Conn, key_id: str, job_id: str | None, kind: str, amount: int, now: float) -> None:
    conn.execute("INSERT INTO ledger (key_id, job_id, kind, amount, created_at) VALUES (%s, %s, %s, %s, %s)",
                 (key_id, job_id, kind, amount, now))


def _balance(conn: Conn, key_id: str) -> float:
    row = conn.execute("SELECT balance FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    return from_micro(row["balance"]) if row else 0.0


def grant(conn: Conn, key_id: str, amount: int, now: float) -> None:
    """Add (or with a negative amount, remove) credits; a balance never goes below zero."""
    cur = conn.execute("UPDATE api_keys SET balance = balance + %s WHERE id = %s AND balance + %s >= 0",
                       (amount, key_id, amount))
    if cur.rowcount != 1:
        raise InvalidRequest("credits", from_micro(amount),
                             f"would make the balance negative (it is {_balance(conn, key_id):g})")
    _log(conn, key_id, None, "grant", amount, now)


def reserve(conn: Conn, key_id: str, job_id: str, amount: int, now: float) -> None:
    """Hold ``amount`` for a job; raise :class:`InsufficientCredits` if the balance is short."""
    cur = conn.execute("UPDATE api_keys SET balance = balance - %s, reserved = reserved + %s"
                       " WHERE id = %s AND balance >= %s", (amount, amount, key_id, amount))
    if cur.rowcount != 1:
        raise InsufficientCredits(f"insufficient credits: this request costs {from_micro(amount)}"
                                  f" and the key has {_balance(conn, key_id)}")
    _log(conn, key_id, job_id, "reserve", -amount, now)


def settle(conn: Conn, job_id: str, outcome: str, now: float) -> bool:
    """Commit or release a job's reservation exactly once; return False if already settled."""
    assert outcome in ("committed", "released")
    row = conn.execute("UPDATE jobs SET charge = %s WHERE id = %s AND charge = 'reserved'"
                       " RETURNING key_id, price", (outcome, job_id)).fetchone()
    if row is None:
        return False
    refund = row["price"] if outcome == "released" else 0
    conn.execute("UPDATE api_keys SET reserved = reserved - %s, balance = balance + %s WHERE id = %s",
                 (row["price"], refund, row["key_id"]))
    _log(conn, row["key_id"], job_id, "release" if refund else "commit", refund, now)
    return True
