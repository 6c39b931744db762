"""HS256 tokens as Kling's clients make them (PyJWT), and every way one can be wrong."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from takeone.edge.dialects.kling.auth import TokenRefused, issuer, read_token, verify, verify_token

SECRET = "sk_" + "s" * 40
NOW = 1_800_000_000.0


def token(secret: str = SECRET, algorithm: str = "HS256", headers: dict[str, Any] | None = None,
          **claims: Any) -> str:
    payload = {"iss": "ak_1", "exp": NOW + 1800, "nbf": NOW - 5, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def code_of(text: str, secret: str = SECRET, now: float = NOW) -> int:
    with pytest.raises(TokenRefused) as refused:
        verify_token(text, secret, now)
    return refused.value.code


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_made_with_pyjwt_is_accepted() -> None:
    claims = verify_token(token(), SECRET, NOW)
    assert claims["iss"] == "ak_1"
    assert issuer(read_token(token())) == "ak_1"
    assert verify_token(token(headers={"typ": "JWT"}), SECRET, NOW)["iss"] == "ak_1"


@pytest.mark.parametrize("claims,now,code", [
    ({"exp": NOW - 10}, NOW, 1004),           # expired beyond the leeway
    ({"nbf": NOW + 60}, NOW, 1003),           # not valid yet
    ({"exp": None}, NOW, 1002),               # no expiry at all
    ({"exp": "soon"}, NOW, 1002),
    ({"exp": True}, NOW, 1002),               # a bool is not a time
    ({"nbf": "now"}, NOW, 1002),
])
def test_times_are_checked(claims: dict[str, Any], now: float, code: int) -> None:
    assert code_of(token(**claims), now=now) == code


def test_five_seconds_of_clock_skew_are_forgiven() -> None:
    assert verify_token(token(exp=NOW - 4, nbf=NOW + 4), SECRET, NOW)
    assert verify_token(token(nbf=None), SECRET, NOW)  # nbf is optional


def test_the_signature_must_be_the_secret_keys() -> None:
    assert code_of(token(secret="another secret entirely, long enough for HS256")) == 1002
    head, body, sig = token().split(".")
    forged = _b64({"iss": "ak_1", "exp": NOW + 10**6})
    assert code_of(f"{head}.{forged}.{sig}") == 1002
    assert code_of(f"{head}.{body}.") == 1002


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "None"}, {"alg": "HS512"}, {"alg": "RS256"},
                                    {"alg": "HS256", "typ": "JWS"}, {}])
def test_only_hs256_is_accepted(header: dict[str, Any]) -> None:
    body = _b64({"iss": "ak_1", "exp": NOW + 100})
    assert code_of(f"{_b64(header)}.{body}.") == 1002
    assert code_of(f"{_b64(header)}.{body}.c2lnbmF0dXJl") == 1002


def test_unsigned_tokens_from_pyjwt_are_refused() -> None:
    unsigned = jwt.encode({"iss": "ak_1", "exp": NOW + 100}, None, algorithm="none")
    with pytest.raises(TokenRefused, match="alg must be HS256"):
        read_token(unsigned)


@pytest.mark.parametrize("text", ["", "abc", "a.b", "a.b.c.d", "!!!.???.###", "x" * 5000,
                                  f"{_b64({'alg': 'HS256'})}.bm90IGpzb24.", f"{_b64({'alg': 'HS256'})}.WzFd."])
def test_malformed_tokens_are_1002(text: str) -> None:
    assert code_of(text) == 1002


def test_a_token_without_iss_names_no_key() -> None:
    with pytest.raises(TokenRefused):
        issuer(read_token(token(iss=None)))


def test_verify_takes_a_parsed_token() -> None:
    parsed = read_token(token())
    assert verify(parsed, SECRET, NOW)["exp"] == NOW + 1800


def test_a_token_for_years_is_refused() -> None:
    """A day at most (before: ``exp`` in the year 3000 was accepted)."""
    assert code_of(token(exp=32503680000)) == 1002
    assert code_of(token(exp=NOW + 24 * 3600 + 60)) == 1002
    assert verify_token(token(exp=NOW + 24 * 3600), SECRET, NOW)["iss"] == "ak_1"
