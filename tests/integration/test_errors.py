"""Every code in the seeds' error table, produced by the condition the table names, and
table-driven validation over every field of both endpoints."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.integration.harness import ImageServer, Server, png_bytes

IMG = "IMG"  # replaced by a served image URL
OK_21 = {"image": IMG}
OK_26 = {"prompt": "a fox", "duration": 5}

# (slug, body change, field named in the error, value named in the error)
INVALID = [
    ("kling-2.1", {"image": None}, "image", None),
    ("kling-2.1", {"image": 42}, "image", "42"),
    ("kling-2.1", {"image": ""}, "image", "''"),
    ("kling-2.1", {"prompt": 7}, "prompt", "7"),
    ("kling-2.1", {"prompt": "x" * 2501}, "prompt", "xxx"),
    ("kling-2.1", {"negative_prompt": ["no"]}, "negative_prompt", "['no']"),
    ("kling-2.1", {"negative_prompt": "x" * 2501}, "negative_prompt", "xxx"),
    ("kling-2.1", {"cfg_scale": 1.5}, "cfg_scale", "1.5"),
    ("kling-2.1", {"cfg_scale": -0.1}, "cfg_scale", "-0.1"),
    ("kling-2.1", {"cfg_scale": "0.5"}, "cfg_scale", "'0.5'"),
    ("kling-2.1", {"mode": "turbo"}, "mode", "'turbo'"),
    ("kling-2.1", {"mode": None}, "mode", "None"),
    ("kling-2.1", {"aspect_ratio": "4:3"}, "aspect_ratio", "'4:3'"),
    ("kling-2.1", {"duration": 7}, "duration", "7"),
    ("kling-2.1", {"duration": "7"}, "duration", "'7'"),
    ("kling-2.1", {"duration": 5.5}, "duration", "5.5"),
    ("kling-2.1", {"image_tail": 3}, "image_tail", "3"),
    ("kling-2.1", {"image_tail": IMG, "mode": "std"}, "mode", "'std'"),
    ("kling-2.1", {"seed": -1}, "seed", "-1"),
    ("kling-2.1", {"seed": "abc"}, "seed", "'abc'"),
    ("kling-2.1", {"generate_audio": True}, "generate_audio", "True"),
    ("kling-2.1", {"aspectratio": "16:9"}, "aspectratio", "16:9"),
    ("kling-2.1", {"image": "not a url or base64 !!"}, "image", "not a url"),
    ("kling-2.1", {"image": "data:image/png;base64,aGVsbG8="}, "image", "data:image/png"),
    ("kling-2.1", {"image": "NOTIMAGE"}, "image", "not-an-image"),
    ("kling-2.1", {"image": "ftp://example.com/a.png"}, "image", "ftp://"),
    ("kling-2.6", {"prompt": None}, "prompt", None),
    ("kling-2.6", {"prompt": ""}, "prompt", "''"),
    ("kling-2.6", {"prompt": "y" * 2501}, "prompt", "yyy"),
    ("kling-2.6", {"prompt": 3.5}, "prompt", "3.5"),
    ("kling-2.6", {"negative_prompt": 1}, "negative_prompt", "1"),
    ("kling-2.6", {"cfg_scale": 2}, "cfg_scale", "2"),
    ("kling-2.6", {"cfg_scale": True}, "cfg_scale", "True"),
    ("kling-2.6", {"mode": "std"}, "mode", "'std'"),
    ("kling-2.6", {"aspect_ratio": "21:9"}, "aspect_ratio", "'21:9'"),
    ("kling-2.6", {"duration": 15}, "duration", "15"),
    ("kling-2.6", {"duration": "ten"}, "duration", "'ten'"),
    ("kling-2.6", {"generate_audio": "false"}, "generate_audio", "'false'"),
    ("kling-2.6", {"generate_audio": 1}, "generate_audio", "1"),
    ("kling-2.6", {"image_url": False}, "image_url", "False"),
    ("kling-2.6", {"image_url": "NOTIMAGE"}, "image_url", "not-an-image"),
    ("kling-2.6", {"image_tail": IMG}, "image_tail", "image_tail"),
    ("kling-2.6", {"seed": 2**40}, "seed", str(2**40)),
    ("kling-2.6", {"promt": "typo"}, "promt", "typo"),
]


def _body(base: dict[str, object], change: dict[str, object], images: ImageServer) -> dict[str, object]:
    body = {**base, **change}
    body = {k: v for k, v in body.items() if not (v is None and k in ("image", "prompt"))}
    swap = {IMG: images.url("/first.jpg"), "NOTIMAGE": images.url("/not-an-image.txt")}
    return {k: swap.get(v, v) if isinstance(v, str) else v for k, v in body.items()}


@pytest.mark.parametrize("slug,change,field,value", INVALID,
                         ids=[f"{s}-{f}-{i}" for i, (s, _, f, _) in enumerate(INVALID)])
def test_invalid_field_is_400_naming_field_and_value(
        server: Server, images: ImageServer, slug: str, change: dict[str, object],
        field: str, value: str | None) -> None:
    key = server.key(5)
    body = _body(OK_21 if slug == "kling-2.1" else OK_26, change, images)
    r = httpx.post(f"{server.url}/v2/{slug}", json=body, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert field in error
    if value is not None:
        assert value in error
    assert server.balance(key) == 5  # nothing reserved


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\"prompt\""])
def test_malformed_body_is_400(server: Server, raw: bytes) -> None:
    r = httpx.post(server.url + "/v1/kling-2.6", content=raw,
                   headers={"x-api-key": server.key(), "content-type": "application/json"})
    assert r.status_code == 400
    assert "body" in r.json()["error"]


def test_raw_base64_and_data_uri_are_accepted(server: Server) -> None:
    b64 = base64.b64encode(png_bytes((200, 120))).decode()
    key = server.key()
    for value in (b64, "data:image/png;base64," + b64):
        r = httpx.post(server.url + "/v2/kling-2.1", json={"image": value}, headers={"x-api-key": key})
        assert r.status_code == 200, r.text


def test_401_missing_unknown_revoked(server: Server) -> None:
    url = server.url + "/v1/kling-2.6"
    assert httpx.post(url, json=OK_26).status_code == 401
    r = httpx.post(url, json=OK_26, headers={"x-api-key": "tk_nope"})
    assert r.status_code == 401 and "invalid API key" in r.json()["error"]
    import time

    from takeone.backends.sql.store import SqlStore
    from takeone.backends.sqlite.driver import SqliteDriver

    store = SqlStore(SqliteDriver(server.data_dir / "takeone.db"), time.time)
    created = store.create(10)
    assert httpx.get(server.url + "/v1/get-user-credits", headers={"x-api-key": created.secret}).status_code == 200
    store.revoke(created.key.id)
    r = httpx.get(server.url + "/v1/get-user-credits", headers={"x-api-key": created.secret})
    assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_403_scope(server: Server, images: ImageServer) -> None:
    key = server.key(scopes=["kling-2.6"])
    r = httpx.post(server.url + "/v2/kling-2.1", json=_body(OK_21, {}, images), headers={"x-api-key": key})
    assert r.status_code == 403 and "kling-2.1" in r.json()["error"]
    assert httpx.post(server.url + "/v2/kling-2.6", json=OK_26, headers={"x-api-key": key}).status_code == 200


def test_404_unknown_slug_and_request(server: Server) -> None:
    key, other = server.key(), server.key()
    h = {"x-api-key": key}
    r = httpx.post(server.url + "/v1/kling-9.9", json=OK_26, headers=h)
    assert r.status_code == 404 and "kling-9.9" in r.json()["error"]
    assert httpx.post(server.url + "/v2/kling-9.9", json=OK_26, headers=h).status_code == 404
    assert httpx.get(server.url + "/v2/requests/nope/status", headers=h).status_code == 404
    mine = httpx.post(server.url + "/v2/kling-2.6", json=OK_26, headers=h).json()["request_id"]
    for path in (f"/v2/requests/{mine}/status", f"/v2/requests/{mine}", f"/v1/requests/{mine}"):
        assert httpx.get(server.url + path, headers={"x-api-key": other}).status_code == 404
        assert httpx.get(server.url + path, headers=h).status_code == 200


def test_406_insufficient_credits(server: Server) -> None:
    key = server.key(1.0)
    r = httpx.post(server.url + "/v1/kling-2.6", json={"prompt": "x", "duration": 10}, headers={"x-api-key": key})
    assert r.status_code == 406
    assert "1.75" in r.json()["error"] and r.headers["x-remaining-credits"] == "1"


def test_429_rate_limit_counts_before_validation(server: Server) -> None:
    key = server.key(rate_limit=2)
    h = {"x-api-key": key}
    assert httpx.post(server.url + "/v2/kling-2.6", json={"bad": 1}, headers=h).status_code == 400
    assert httpx.post(server.url + "/v2/kling-2.6", json=OK_26, headers=h).status_code == 200
    r = httpx.post(server.url + "/v2/kling-2.6", json={"bad": 1}, headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert httpx.get(server.url + "/v1/get-user-credits", headers=h).status_code == 200  # polls are free


def test_413_body_too_large(server: Server) -> None:
    r = httpx.post(server.url + "/v1/kling-2.6", content=b"{" + b" " * (33 * 1024 * 1024) + b"}",
                   headers={"x-api-key": server.key(), "content-type": "application/json"})
    assert r.status_code == 413


def test_a_body_of_unknown_fields_gets_a_short_answer(server: Server) -> None:
    """About 1 MB of unknown field names: the 400 names a few of them, cut short (before: the
    answer repeated every name, as large as the body)."""
    body = {**OK_26, **{f"unknown_{n:06d}_" + "x" * 40: 1 for n in range(20_000)}}
    r = httpx.post(server.url + "/v2/kling-2.6", json=body, headers={"x-api-key": server.key()}, timeout=60)
    assert r.status_code == 400, r.text[:300]
    assert "unknown_000000_" in r.text and len(r.content) < 2_000, len(r.content)
