"""Sealed key credentials: they open only with the same server secret and the same context."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from takeone.backends.sqlite.store import SqliteStore
from takeone.core.credentials import (
    ACCESS_CONTEXT,
    WEBHOOK_CONTEXT,
    SecretBox,
    check_shared_secret,
    context_for,
    fingerprint,
)
from takeone.core.errors import InvalidRequest


def test_seal_and_open() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal("whsec_abc", "key_1:webhook-secret")
    assert "whsec" not in sealed and sealed.startswith("v1.")
    assert box.open(sealed, "key_1:webhook-secret") == "whsec_abc"
    assert box.seal("x", "c") != box.seal("x", "c")  # a fresh nonce each time


def test_another_server_secret_or_context_does_not_open_it() -> None:
    sealed = SecretBox(b"k" * 32).seal("sk_secret", "key_1:access-secret")
    with pytest.raises(ValueError):
        SecretBox(b"j" * 32).open(sealed, "key_1:access-secret")
    with pytest.raises(ValueError):
        SecretBox(b"k" * 32).open(sealed, "key_2:access-secret")  # copied onto another key
    with pytest.raises(ValueError):
        SecretBox(b"k" * 32).open("v0." + sealed[3:], "key_1:access-secret")


def test_an_empty_server_secret_or_a_tampered_seal_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox(b"")
    box = SecretBox(b"k" * 32)
    sealed = box.seal("whsec_abc", "c")
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[-1] ^= 1
    with pytest.raises(ValueError, match="does not open"):
        box.open("v1." + base64.urlsafe_b64encode(bytes(raw)).decode(), "c")


def test_the_fingerprint_names_a_secret_without_revealing_it() -> None:
    a, b = fingerprint(b"k" * 32), fingerprint(b"j" * 32)
    assert len(a) == 32 and a != b and a == fingerprint(b"k" * 32)
    assert "kkkk" not in a
    assert context_for("key_1", WEBHOOK_CONTEXT) == "key_1:webhook-secret"
    assert context_for("key_1", ACCESS_CONTEXT) != context_for("key_1", WEBHOOK_CONTEXT)


def test_a_store_is_pinned_to_the_first_server_secret(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "takeone.db")
        try:
            await check_shared_secret(store, b"first" * 8, "first.key")
            await check_shared_secret(store, b"first" * 8, "first.key")  # the same secret again: fine
            with pytest.raises(InvalidRequest) as caught:
                await check_shared_secret(store, b"other" * 8, "other.key")
            assert caught.value.field == "--secret-file" and caught.value.value == "other.key"
            assert "same file" in str(caught.value)
        finally:
            store.close()

    asyncio.run(run())
