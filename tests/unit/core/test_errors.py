"""The error hierarchy: a bad field is named with its value (shortened, never a wall of text),
and every error maps to the HTTP status its family promises."""

from __future__ import annotations

import inspect

import pytest

from takeone.core import errors
from takeone.core.errors import MISSING, ImageError, InvalidRequest, JobCancelled, RateLimited, TakeoneError
from takeone.edge.errors import status_of


def test_an_invalid_request_names_the_field_the_reason_and_the_value() -> None:
    err = InvalidRequest("duration", "7", "must be one of 5, 10")
    assert str(err) == err.message == "duration: must be one of 5, 10 (got '7')"
    assert (err.field, err.value, err.reason) == ("duration", "7", "must be one of 5, 10")
    assert str(InvalidRequest("prompt", MISSING, "is required")) == "prompt: is required (got nothing)"


def test_a_long_value_is_shortened_to_80_characters() -> None:
    err = InvalidRequest("prompt", "x" * 500, "is too long")
    shown = str(err).split("(got ", 1)[1][:-1]
    assert len(shown) == 80 and shown.endswith("...") and shown.startswith("'xxx")
    exact = "y" * 78  # repr adds two quotes: 80 characters, shown whole
    assert str(InvalidRequest("p", exact, "r")).endswith(f"(got '{exact}')")


def test_the_families_hold() -> None:
    assert issubclass(ImageError, InvalidRequest)
    assert issubclass(errors.WeightsMissing, errors.WorkerUnavailable)
    assert issubclass(errors.OutOfMemory, errors.GenerationFailed)
    assert str(JobCancelled()) == "cancelled" and isinstance(JobCancelled(), errors.GenerationFailed)
    assert RateLimited("slow down", retry_after=7).retry_after == 7


EXPECTED = {
    InvalidRequest("f", 1, "r"): 400, ImageError("image", "x", "does not decode"): 400,
    errors.Unauthorized("no key"): 401, errors.Forbidden("no"): 403, errors.NotFound("gone"): 404,
    errors.RequestTimeout("slow"): 408, errors.InsufficientCredits("poor"): 406, errors.Conflict("again"): 409,
    errors.PayloadTooLarge("big"): 413, RateLimited("fast", 3): 429, errors.GenerationFailed("boom"): 500,
    JobCancelled(): 500, errors.OutOfMemory("oom"): 500, errors.WorkerUnavailable("down"): 502,
    errors.WeightsMissing("pull"): 502, errors.InsufficientGpuMemory("small"): 502,
    errors.StoreUnavailable("locked"): 503, errors.DeadlineExceeded("late"): 504, TakeoneError("?"): 500,
}


@pytest.mark.parametrize("err,status", EXPECTED.items(), ids=lambda v: type(v).__name__ if
                         isinstance(v, Exception) else str(v))
def test_each_error_maps_to_its_status(err: TakeoneError, status: int) -> None:
    assert status_of(err) == status


def test_every_error_class_is_in_the_table_above() -> None:
    classes = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, TakeoneError)}
    assert classes == {type(err) for err in EXPECTED}


def test_a_subclass_nobody_mapped_gets_its_family_status() -> None:
    class LoraMissing(errors.NotFound):
        pass

    assert status_of(LoraMissing("no such LoRA")) == 404
