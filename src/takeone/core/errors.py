"""One error hierarchy for takeone.

Every failure the server reports to a client is a :class:`TakeoneError`. The HTTP status of
each class is assigned in exactly one place, :data:`takeone.edge.errors.HTTP_STATUS`, and a test
checks that every class below has one.

    TakeoneError
    ├── InvalidRequest          a parameter is missing, mistyped or out of range (400)
    │   └── ImageError          an image input cannot be fetched or decoded (400)
    ├── Unauthorized            no key, an unknown key or a revoked key (401)
    ├── Forbidden               the key may not call this slug (403)
    ├── NotFound                unknown slug or request id, or another key's request (404)
    ├── Conflict                an idempotency key reused for another request; nothing to cancel (409)
    ├── PayloadTooLarge         the request body is over the size cap (413)
    ├── RequestTimeout          the request body arrived too slowly (408)
    ├── InsufficientCredits     the balance does not cover the price (406)
    ├── RateLimited             requests per minute or concurrent jobs exceeded (429)
    ├── WorkerUnavailable       no worker can serve the request (502)
    │   ├── WeightsMissing      a profile's weights are not on this machine (startup)
    │   └── InsufficientGpuMemory  the profile cannot fit on the card (startup)
    ├── StoreUnavailable        the job store cannot take writes (locked, disk full) (503)
    ├── DeadlineExceeded        a blocking call's deadline passed (504)
    └── GenerationFailed        the model raised while generating (500)
        ├── JobCancelled        the job was cancelled (worker side; surfaces as FAILED)
        └── OutOfMemory         the device ran out of memory for this job

Example::

    raise InvalidRequest("duration", "7", "must be one of 5, 10")
"""

from __future__ import annotations


class TakeoneError(Exception):
    """Base of every error takeone reports; ``str(err)`` is the client-facing sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(TakeoneError):
    """A request parameter is wrong; the message names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {reason} (got {_show(value)})")
        self.field = field
        self.value = value
        self.reason = reason


class ImageError(InvalidRequest):
    """An image input could not be fetched, was refused, or does not decode as an image."""


class Unauthorized(TakeoneError):
    """Missing, unknown or revoked API key."""


class Forbidden(TakeoneError):
    """The key is valid but not allowed to call this slug."""


class NotFound(TakeoneError):
    """Unknown slug or request id (another key's requests are reported the same way)."""


class Conflict(TakeoneError):
    """The request contradicts what the server already holds (an idempotency key first used
    for another request; a cancel of a request that already finished)."""


class PayloadTooLarge(TakeoneError):
    """The request body is larger than the server accepts."""


class RequestTimeout(TakeoneError):
    """The client took longer than the server allows to send its request."""


class InsufficientCredits(TakeoneError):
    """The key's balance does not cover the request's price."""


class RateLimited(TakeoneError):
    """The key's request rate or concurrent-jobs limit is exceeded."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WorkerUnavailable(TakeoneError):
    """No worker can serve the request (model failed to load, worker crashed repeatedly)."""


class WeightsMissing(WorkerUnavailable):
    """Some of a profile's weights are not on this machine; ``takeone pull`` fetches them."""


class InsufficientGpuMemory(WorkerUnavailable):
    """The profile cannot fit on the card with the configured offloading."""


class StoreUnavailable(TakeoneError):
    """The job store cannot take writes now (locked past its timeout, disk full, corrupt)."""


class DeadlineExceeded(TakeoneError):
    """The blocking call's deadline passed before the video was ready."""


class GenerationFailed(TakeoneError):
    """The model failed while generating this job."""


class JobCancelled(GenerationFailed):
    """The job was cancelled before its video was delivered."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class OutOfMemory(GenerationFailed):
    """The device ran out of memory for this job; the worker stays up for the next one."""


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


MISSING = _Missing()
"""The value shown for a field that was not sent."""


def _show(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
