"""The retry schedule (Standard Webhooks' example, bounded, with jitter) and what each
answer means for a delivery."""

from __future__ import annotations

import pytest

from takeone.edge.background.webhooks.delivery import judge, parse_retry_after
from takeone.edge.background.webhooks.schedule import STANDARD_DELAYS_S, RetrySchedule


def test_the_standard_schedule_without_jitter() -> None:
    schedule = RetrySchedule(rand=lambda: 0.5)  # the middle of the jitter: no change
    delays = [schedule.next_delay(n, None) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert schedule.max_attempts == 8 and sum(STANDARD_DELAYS_S) / 3600 == pytest.approx(27.58, abs=0.01)


@pytest.mark.parametrize("rand,factor", [(0.0, 0.9), (1.0, 1.1)])
def test_jitter_is_ten_percent_either_way(rand: float, factor: float) -> None:
    assert RetrySchedule(rand=lambda: rand).next_delay(2, None) == pytest.approx(300 * factor)


def test_retry_after_makes_the_wait_at_least_that_long() -> None:
    schedule = RetrySchedule(delays_s=(1, 1), rand=lambda: 0.5)
    assert schedule.next_delay(1, 30) == 30
    assert schedule.next_delay(1, 0.2) == 1
    assert schedule.next_delay(1, 10**9) == 24 * 3600  # capped at a day
    assert schedule.next_delay(3, 30) is None           # spent: Retry-After does not extend it


@pytest.mark.parametrize("status,delivered,retry", [
    (200, True, False), (204, True, False), (299, True, False),
    (410, False, False), (400, False, False), (404, False, False), (301, False, False),
    (408, False, True), (429, False, True), (500, False, True), (503, False, True),
])
def test_what_each_answer_means(status: int, delivered: bool, retry: bool) -> None:
    outcome = judge(status, None)
    assert (outcome.delivered, outcome.retry) == (delivered, retry)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert judge(429, "7").retry_after == 7
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=1767225600) == 60
    assert parse_retry_after("tomorrow", now=0) is None and parse_retry_after(None) is None
