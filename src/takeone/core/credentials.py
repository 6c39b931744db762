"""Secrets a key holds besides its own: a webhook signing secret and an access-key pair.

An API key is stored as a hash, because the server only ever compares it. These two must be
*used* by the server, to sign webhook deliveries (``whsec_...``) and to verify HS256 tokens
made with an access key's secret key, so they cannot be hashes. They are stored sealed:
AES-256-GCM under a key derived with HKDF-SHA256 from the data folder's ``secret.key``, with
the key's id and the secret's purpose as associated data (a sealed value copied onto another
key, or used for another purpose, does not open). A copy of ``takeone.db`` alone reveals
neither; whoever holds ``secret.key`` as well holds both, as the server itself must.

Example::

    box = SecretBox(server_secret)
    sealed = box.seal("whsec_...", context="key_1a2b:webhook")
    box.open(sealed, context="key_1a2b:webhook")   # "whsec_..."
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from takeone.core.accounts import ApiKey
from takeone.core.errors import InvalidRequest

SEAL_VERSION = "v1"
NONCE_BYTES = 12
WEBHOOK_CONTEXT = "webhook-secret"
ACCESS_CONTEXT = "access-secret"


class SecretBox:
    """Seal and open short secrets with a key derived from the server's own secret."""

    def __init__(self, server_secret: bytes, purpose: bytes = b"takeone sealed credentials v1") -> None:
        if not server_secret:
            raise ValueError("the server secret is empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(server_secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, context: str) -> str:
        """The plaintext; ``ValueError`` if it was sealed under another server secret or context."""
        version, _, payload = sealed.partition(".")
        if version != SEAL_VERSION:
            raise ValueError(f"unknown sealed-secret version {version!r}")
        raw = base64.urlsafe_b64decode(payload.encode("ascii"))
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag:
            raise ValueError("the sealed secret does not open with this server's secret.key") from None
        return plain.decode("utf-8")


def fingerprint(server_secret: bytes) -> str:
    """A public name for the server secret: processes sharing a store compare it at start."""
    return hmac.new(server_secret, b"takeone server secret fingerprint v1", hashlib.sha256).hexdigest()[:32]


async def check_shared_secret(store: SecretPin, server_secret: bytes, path: str) -> None:
    """Refuse to go on with a server secret other than the one the store was set up with."""
    mine = fingerprint(server_secret)
    if await store.pin_secret(mine) != mine:
        raise InvalidRequest("--secret-file", path,
                             "is not the server secret this database was set up with: every replica and worker"
                             " needs the same file (copy it from the first server), or sealed webhook secrets"
                             " and access keys will not open")


class SecretPin(Protocol):
    async def pin_secret(self, fingerprint: str) -> str:
        """Record the server secret's fingerprint if none is recorded; return the recorded one
        (every process sharing the store must hold the same secret, or sealed credentials
        made by one do not open in another)."""


def context_for(key_id: str, purpose: str) -> str:
    return f"{key_id}:{purpose}"


@dataclass(frozen=True)
class KeyWebhook:
    """A key's webhook settings: the URL used for jobs that name none, and the sealed secret."""

    url: str | None
    sealed_secret: str | None


class KeyCredentials(Protocol):
    """Webhook settings and access-key pairs of API keys (values sealed by the caller)."""

    async def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey:
        """Set (or with ``None`` clear) the key's webhook URL; by id or prefix."""

    async def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey: ...

    async def webhook_of(self, key_id: str) -> KeyWebhook: ...

    async def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        """Give the key an access key (public, unique) and its sealed secret key."""

    async def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        """The key that owns ``access_key`` and its sealed secret key (revoked keys too)."""
