"""A store call through an outage: retried with a doubling delay up to a ceiling, the outage
reported while it lasts, logged on the first try and every tenth, other errors passed on."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from takeone.core.errors import InvalidRequest, StoreUnavailable
from takeone.dispatch import retry
from takeone.dispatch.retry import StoreRetry


def flaky(failures: int, stamps: list[float]) -> object:
    left = [failures]

    async def call() -> str:
        stamps.append(time.monotonic())
        if left[0] > 0:
            left[0] -= 1
            raise StoreUnavailable(f"database is locked ({left[0]} left)")
        return "written"

    return call


def test_the_delay_doubles_up_to_its_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0.02)
    monkeypatch.setattr(retry, "MAX_DELAY_S", 0.08)
    stamps: list[float] = []
    calls = StoreRetry("test")
    assert asyncio.run(calls.run("complete", flaky(6, stamps))) == "written"  # type: ignore[arg-type]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(gaps) == 6
    for gap, planned in zip(gaps, [0.02, 0.04, 0.08, 0.08, 0.08, 0.08]):
        assert planned <= gap < planned + 0.5  # asyncio.sleep never wakes early; a busy machine wakes late
    assert calls.error is None


def test_the_outage_is_reported_while_it_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0.001)
    calls = StoreRetry("dispatcher")
    seen: list[str | None] = []

    async def run() -> None:
        task = asyncio.create_task(calls.run("claim", flaky(3, [])))  # type: ignore[arg-type]
        while not task.done():
            seen.append(calls.error)
            await asyncio.sleep(0)
        await task

    asyncio.run(run())
    assert any(e is not None and e.startswith("database is locked") for e in seen)
    assert calls.error is None


def test_the_log_says_the_first_try_every_tenth_and_the_recovery(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0.0)
    monkeypatch.setattr(retry, "MAX_DELAY_S", 0.0)
    caplog.set_level(logging.WARNING, logger="takeone.dispatch")
    asyncio.run(StoreRetry("pool").run("renew", flaky(21, [])))  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split("(try ")[-1] for line in lines[:-1]] == ["1)", "10)", "20)"]
    assert lines[0].startswith("pool: renew failed (database is locked")
    assert lines[-1] == "pool: the job store answers again (renew)"


def test_other_errors_are_not_retried() -> None:
    stamps: list[float] = []

    async def wrong() -> None:
        stamps.append(time.monotonic())
        raise InvalidRequest("seconds", 7, "must be 5 or 10")

    with pytest.raises(InvalidRequest):
        asyncio.run(StoreRetry("test").run("submit", wrong))
    assert len(stamps) == 1
