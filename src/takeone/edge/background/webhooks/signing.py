"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is ``whsec_`` + base64 of 32 random bytes. Each attempt is signed over
``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256; the header value is ``v1,`` +
base64 of the digest. The ``webhook-id`` is the same on every retry of one delivery (the
receiver's idempotency key); the timestamp is the attempt's, so receivers can refuse replays.

Example::

    secret = new_secret()
    headers = signed_headers("msg_1", 1767225600, b'{"type":"video.completed"}', secret)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(webhook_id: str, timestamp: int, body: bytes, secret: str | None) -> dict[str, str]:
    """The Standard Webhooks headers; without a secret the delivery goes unsigned."""
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
               "content-type": "application/json"}
    if secret:
        headers["webhook-signature"] = sign(secret, webhook_id, timestamp, body)
    return headers
