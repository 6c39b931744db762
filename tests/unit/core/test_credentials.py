"""Sealed key credentials: they open only with the same server secret and the same context."""

from __future__ import annotations

import pytest

from takeone.core.credentials import SecretBox


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
