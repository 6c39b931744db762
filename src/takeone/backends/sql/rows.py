"""Rows of the SQL store as the core's records (JSON columns decoded by the driver).

Example::

    job = to_job(tx.one("SELECT * FROM jobs WHERE id = ?", (job_id,)), driver)
"""

from __future__ import annotations

from takeone.backends.sql.driver import Driver, Row
from takeone.core.accounts import ApiKey, from_micro
from takeone.core.jobs import Job, JobStatus, WorkerStatus
from takeone.core.task import VideoTask
from takeone.core.webhooks import Delivery


def to_job(row: Row, db: Driver) -> Job:
    return Job(
        id=row["id"], key_id=row["key_id"], task=VideoTask.from_dict(db.from_json(row["request"])),
        route=row["endpoint"], price=from_micro(row["price"]), status=JobStatus(row["status"]),
        created_at=row["created_at"], blocking=bool(row["blocking"]), progress=row["progress"],
        attempts=row["attempts"], error=row["error"], output=row["output"], metrics=db.from_json(row["metrics"]),
        started_at=row["started_at"], finished_at=row["finished_at"], caller=row["caller"],
        worker=row["lease_owner"], request_hash=row["request_hash"], dialect=row["dialect"],
        webhook_url=row["webhook_url"], external_id=row["external_id"], meta=db.from_json(row["meta"]),
    )


def to_key(row: Row, db: Driver) -> ApiKey:
    scopes = db.from_json(row["scopes"])
    return ApiKey(
        id=row["id"], prefix=row["prefix"], name=row["name"],
        scopes=tuple(scopes) if scopes is not None else None,
        rate_limit=row["rate_limit"], max_concurrent=row["max_concurrent"], max_queued=row["max_queued"],
        balance=from_micro(row["balance"]), reserved=from_micro(row["reserved"]),
        created_at=row["created_at"], revoked=row["revoked_at"] is not None,
    )


def to_delivery(row: Row) -> Delivery:
    return Delivery(id=row["id"], webhook_id=row["webhook_id"], job_id=row["job_id"],
                    status=JobStatus(row["status"]), url=row["url"], attempts=row["attempts"],
                    created_at=row["created_at"])


def to_worker(row: Row) -> WorkerStatus:
    return WorkerStatus(id=row["id"], profile=row["profile"], state=row["state"], seen_at=row["seen_at"],
                        device=row["device"], job_id=row["job_id"], error=row["error"], pid=row["pid"])
