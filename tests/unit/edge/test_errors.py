import inspect

from takeone.core import errors
from takeone.edge.errors import HTTP_STATUS, status_of


def test_every_error_class_has_an_http_status() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.TakeoneError)]
    assert len(classes) >= 12
    assert set(classes) <= set(HTTP_STATUS)


def test_statuses_follow_the_contract() -> None:
    assert status_of(errors.InvalidRequest("duration", 7, "must be 5 or 10")) == 400
    assert status_of(errors.ImageError("image", "x", "bad")) == 400
    assert status_of(errors.RateLimited("slow down", 3)) == 429
    assert status_of(errors.WorkerUnavailable("none")) == 502
    assert status_of(errors.DeadlineExceeded("late")) == 504


def test_invalid_request_names_field_and_value() -> None:
    err = errors.InvalidRequest("aspect_ratio", "4:3", "must be one of 16:9, 9:16, 1:1")
    assert str(err) == "aspect_ratio: must be one of 16:9, 9:16, 1:1 (got '4:3')"
    assert "got nothing" in str(errors.InvalidRequest("image", errors.MISSING, "is required"))
