"""What every dialect does to a job the same way: find it among the caller's, cancel it,
delete it with its files.

Example::

    job = owned(await services.store.get(job_id), key, DIALECT)  # None: not this key's, or not here
    await cancel_job(services, job.id, "cancelled")   # FAILED now, price released
    await delete_job(services, job)                   # record, inputs, video and poster gone
"""

from __future__ import annotations

import asyncio

from takeone.core.accounts import ApiKey
from takeone.core.blobs import input_prefix, poster_key
from takeone.core.jobs import Job
from takeone.edge.services import Services


def owned(job: Job | None, key: ApiKey, dialect: str) -> Job | None:
    """``job`` when ``key`` made it through ``dialect``; None otherwise, so that another key's
    job, another dialect's and a missing one look the same to a client (one 404)."""
    if job is None or job.key_id != key.id or job.dialect != dialect:
        return None
    return job


async def cancel_job(services: Services, job_id: str, reason: str) -> Job | None:
    """Fail the job now (releasing its credits); a running one stops at its next step."""
    await services.store.fail(job_id, reason)
    services.cancel_running(job_id)
    return await services.store.get(job_id)


async def delete_job(services: Services, job: Job) -> None:
    """Forget the job: its record (and pending webhooks), its inputs, its video and poster."""
    await services.store.delete(job.id)
    if job.output:
        await asyncio.to_thread(services.blobs.delete, job.output)
    await asyncio.to_thread(services.blobs.delete, poster_key(job.id))
    await asyncio.to_thread(services.blobs.delete_prefix, input_prefix(job.id))


def base_url(services: Services, request_base: str) -> str:
    """The absolute base of links in answers: ``--public-url`` or the request's own base."""
    return (services.settings.public_url or request_base).rstrip("/")
