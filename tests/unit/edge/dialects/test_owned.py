"""One check, for every dialect, that a job is the caller's and was made through that dialect:
anything else reads as no job at all (one 404, never a hint that another key's job exists)."""

from __future__ import annotations

from takeone.core.accounts import ApiKey
from takeone.core.jobs import Job, JobStatus
from takeone.core.task import VideoTask
from takeone.edge.dialects.actions import owned


def _key(key_id: str) -> ApiKey:
    return ApiKey(id=key_id, prefix="tk_x", name="", scopes=None, rate_limit=None, max_concurrent=None,
                  balance=0.0, reserved=0.0, created_at=0.0, revoked=False)


def _job(key_id: str, dialect: str) -> Job:
    return Job(id="j1", key_id=key_id, task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,
               created_at=0.0, dialect=dialect)


def test_only_the_callers_job_of_the_same_dialect_is_found() -> None:
    mine = _job("k1", "openai")
    assert owned(mine, _key("k1"), "openai") is mine
    assert owned(mine, _key("k2"), "openai") is None  # another key's
    assert owned(mine, _key("k1"), "runpod") is None  # another dialect's
    assert owned(None, _key("k1"), "openai") is None  # none at all
