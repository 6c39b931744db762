"""Credit amounts and limits as typed by a person, exact micro-credit sums, rate-limit answers
and key scopes."""

from __future__ import annotations

import math

import pytest

from takeone.core.accounts import (
    MAX_CREDITS,
    MICRO,
    ApiKey,
    check_amount,
    check_limit,
    from_micro,
    rate_limited,
    to_micro,
)
from takeone.core.errors import Forbidden, InvalidRequest


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, MAX_CREDITS * 1.01, True, "5", None])
def test_an_amount_that_is_not_a_sane_number_is_refused(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_amount("--credits", value)  # type: ignore[arg-type]
    assert caught.value.field == "--credits" and repr(value)[:10] in str(caught.value)


def test_negative_amounts_only_where_allowed() -> None:
    with pytest.raises(InvalidRequest, match="must not be negative"):
        check_amount("credits", -1)
    assert check_amount("credits", -2.5, allow_negative=True) == -2.5
    assert check_amount("credits", MAX_CREDITS) == MAX_CREDITS
    assert check_amount("credits", 0) == 0.0 and isinstance(check_amount("credits", 3), float)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_a_limit_is_a_positive_whole_number_or_none(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_limit("--rate-limit", value)  # type: ignore[arg-type]
    assert caught.value.field == "--rate-limit"


def test_limits_that_are_accepted() -> None:
    assert check_limit("--rate-limit", None) is None
    assert check_limit("--rate-limit", 1) == 1


def test_micro_credits_make_decimal_sums_exact() -> None:
    assert to_micro(0.1) + to_micro(0.2) == to_micro(0.3)
    assert sum(to_micro(0.01) for _ in range(100)) == MICRO
    assert to_micro(1.0000004) == MICRO and to_micro(1.0000006) == MICRO + 1  # rounded, not cut
    assert from_micro(to_micro(12.345678)) == 12.345678
    assert from_micro(1) == 0.000001 and from_micro(-1_500_000) == -1.5
    assert to_micro(MAX_CREDITS) == 10**15  # far inside an int64


@pytest.mark.parametrize("oldest,now,retry", [(100.0, 100.0, 60), (100.0, 130.2, 30), (100.0, 159.99, 1),
                                               (100.0, 170.0, 1)])
def test_a_rate_limit_says_when_to_retry(oldest: float, now: float, retry: int) -> None:
    err = rate_limited(30, oldest, now)
    assert err.retry_after == retry
    assert "30 generation requests per minute" in str(err) and f"retry in {retry} s" in str(err)


def key(scopes: tuple[str, ...] | None) -> ApiKey:
    return ApiKey(id="key_1", prefix="sk_1", name="", scopes=scopes, rate_limit=None, max_concurrent=None,
                  balance=1, reserved=0, created_at=0, revoked=False)


def test_scopes_limit_routes_but_lora_scopes_do_not() -> None:
    key(None).check_scope("kling-2.6")
    key(("kling-2.6", "lora:anime")).check_scope("kling-2.6")
    key(("lora:anime",)).check_scope("kling-2.1")  # scoped to a LoRA only: every route
    with pytest.raises(Forbidden, match="'kling-2.1'.*allowed: kling-2.6"):
        key(("kling-2.6", "lora:anime")).check_scope("kling-2.1")
    with pytest.raises(Forbidden):
        key(()).check_scope("kling-2.6")  # an empty scope list allows nothing
