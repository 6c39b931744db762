"""Standard Webhooks signatures, checked against the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from takeone.edge.background.webhooks.signing import new_secret, sign, signed_headers


def test_signatures_verify_with_the_reference_package() -> None:
    secret = new_secret()
    body = b'{"type":"video.completed","data":{"id":"video_1"}}'
    headers = signed_headers("msg_1", int(time.time()), body, secret)
    assert Webhook(secret).verify(body, headers)["data"] == {"id": "video_1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_the_reference_package_signs_the_same() -> None:
    secret = new_secret()
    from datetime import UTC, datetime

    expected = Webhook(secret).sign("msg_2", datetime.fromtimestamp(1767225600, UTC), "{}")
    assert sign(secret, "msg_2", 1767225600, b"{}") == expected


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_without_a_secret_the_delivery_is_unsigned() -> None:
    headers = signed_headers("msg_3", 1, b"{}", None)
    assert headers["webhook-id"] == "msg_3" and headers["webhook-timestamp"] == "1"
    assert "webhook-signature" not in headers


def test_a_loopback_webhook_names_the_server_option() -> None:
    import asyncio

    import pytest

    from takeone.core.errors import InvalidRequest
    from takeone.edge.background.webhooks.delivery import check_webhook_url
    from takeone.media.images import FetchPolicy

    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(check_webhook_url("http://127.0.0.1:9/hook", "webhook_url", FetchPolicy()))
    assert "--fetch-allow 127.0.0.1" in refused.value.message and "webhook_url" in str(refused.value.field)
    allowed = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))
    assert asyncio.run(check_webhook_url("http://127.0.0.1:9/hook", "webhook_url", allowed))
