"""The credit ledger, always inside the caller's write transaction.

Amounts are integer micro-credits so sums are exact; clients see floats. A job's price moves
through exactly one of two paths, each guarded so it happens once (the ``charge`` column
leaves ``reserved`` only once):

    reserve (on submit) -> commit  (video delivered)
                        -> release (failed, cancelled, timed out: nothing charged)

Callers lock the key's row first (:func:`takeone.backends.sql.status.lock_key`), so every
balance check holds across processes.

Example::

    with driver.write() as tx:
        reserve(tx, key_id, job_id, 2_500_000, now)   # 2.5 credits
"""

from __future__ import annotations

from takeone.backends.sql.driver import Tx
from takeone.core.accounts import from_micro
from takeone.core.errors import InsufficientCredits, InvalidRequest


def _log(tx: Tx, key_id: str, job_id: str | None, kind: str, amount: int, now: float) -> None:
    tx.execute("INSERT INTO ledger (key_id, job_id, kind, amount, created_at) VALUES (?, ?, ?, ?, ?)",
               (key_id, job_id, kind, amount, now))


def _balance(tx: Tx, key_id: str) -> float:
    row = tx.one("SELECT balance FROM api_keys WHERE id = ?", (key_id,))
    return from_micro(row["balance"]) if row else 0.0


def grant(tx: Tx, key_id: str, amount: int, now: float) -> None:
    """Add (or with a negative amount, remove) credits; a balance never goes below zero."""
    if tx.execute("UPDATE api_keys SET balance = balance + ? WHERE id = ? AND balance + ? >= 0",
                  (amount, key_id, amount)) != 1:
        raise InvalidRequest("credits", from_micro(amount),
                             f"would make the balance negative (it is {_balance(tx, key_id):g})")
    _log(tx, key_id, None, "grant", amount, now)


def reserve(tx: Tx, key_id: str, job_id: str, amount: int, now: float) -> None:
    """Hold ``amount`` for a job; raise :class:`InsufficientCredits` if the balance is short."""
    if tx.execute("UPDATE api_keys SET balance = balance - ?, reserved = reserved + ?"
                  " WHERE id = ? AND balance >= ?", (amount, amount, key_id, amount)) != 1:
        raise InsufficientCredits(f"insufficient credits: this request costs {from_micro(amount)}"
                                  f" and the key has {_balance(tx, key_id)}")
    _log(tx, key_id, job_id, "reserve", -amount, now)


def settle(tx: Tx, job_id: str, outcome: str, now: float) -> bool:
    """Commit or release a job's reservation exactly once; return False if already settled."""
    assert outcome in ("committed", "released")
    row = tx.one("UPDATE jobs SET charge = ? WHERE id = ? AND charge = 'reserved' RETURNING key_id, price",
                 (outcome, job_id))
    if row is None:
        return False
    refund = row["price"] if outcome == "released" else 0
    tx.execute("UPDATE api_keys SET reserved = reserved - ?, balance = balance + ? WHERE id = ?",
               (row["price"], refund, row["key_id"]))
    _log(tx, row["key_id"], job_id, "release" if refund else "commit", refund, now)
    return True
