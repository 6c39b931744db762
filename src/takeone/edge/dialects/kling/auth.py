"""Kling's authentication: ``Authorization: Bearer <JWT>``, HS256-signed with a secret key.

The token's ``iss`` is an access key that ``takeone keys create --key-pair`` issued; the
server opens that key's sealed secret key and checks the signature with HMAC-SHA256 in
constant time. Only ``alg: HS256`` is accepted (``none`` and every other algorithm are
refused before anything else is looked at); ``exp`` is required and ``nbf`` checked when
present, each with five seconds of leeway for clock skew; an ``exp`` more than
:data:`MAX_LIFETIME_S` (a day) ahead is refused (a leaked token must not work for years:
Kling's own clients sign for 30 minutes). Refusals are 401 with Kling's
codes: 1001 no token, 1002 malformed or wrong signature, 1003 not yet valid, 1004 expired.

Example::

    claims = verify_token(token, secret_key, now=time.time())
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from takeone.core.accounts import ApiKey
from takeone.core.credentials import ACCESS_CONTEXT, SecretBox, context_for
from takeone.core.errors import Unauthorized
from takeone.edge.services import Services

LEEWAY_S = 5.0
MAX_TOKEN = 4096
MAX_LIFETIME_S = 24 * 3600.0
SECURITY: Mapping[str, Mapping[str, Any]] = {
    "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A short-lived HS256 JWT: issuer the access key, signed with the secret key"
                           " of a pair from `takeone keys key-pair`."},
}


class TokenRefused(Unauthorized):
    """A refused token, with Kling's code for the reason."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signed: bytes  # "header.payload", the bytes the signature covers
    signature: bytes


def _b64url(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenRefused(1002, "the token is not a JWT (bad base64url)") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TokenRefused(1002, f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRefused(1002, f"the token's {what} is not a JSON object")
    return value


def read_token(token: str) -> Token:
    """Split and decode a compact JWT; only HS256 tokens get past this point."""
    parts = token.split(".")
    if len(token) > MAX_TOKEN or len(parts) != 3 or not all(parts[:2]):
        raise TokenRefused(1002, "the token is not a JWT (header.payload.signature)")
    header = _json_object(_b64url(parts[0]), "header")
    if header.get("alg") != "HS256":
        raise TokenRefused(1002, f"the token's alg must be HS256 (got {header.get('alg')!r})")
    if header.get("typ", "JWT") != "JWT":
        raise TokenRefused(1002, f"the token's typ must be JWT (got {header.get('typ')!r})")
    claims = _json_object(_b64url(parts[1]), "payload")
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url(parts[2]))


def issuer(token: Token) -> str:
    iss = token.claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise TokenRefused(1002, "the token has no iss (the access key)")
    return iss


def verify(token: Token, secret_key: str, now: float, leeway: float = LEEWAY_S) -> dict[str, Any]:
    """The claims if the signature is the secret key's and the token is valid at ``now``."""
    expected = hmac.new(secret_key.encode("utf-8"), token.signed, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, token.signature):
        raise TokenRefused(1002, "the token's signature does not match its access key's secret key")
    exp, nbf = token.claims.get("exp"), token.claims.get("nbf")
    if not isinstance(exp, (int, float)) or not _number(exp):
        raise TokenRefused(1002, "the token has no exp (expiry time)")
    if nbf is not None and not (isinstance(nbf, (int, float)) and _number(nbf)):
        raise TokenRefused(1002, "the token's nbf is not a number")
    if now > exp + leeway:
        raise TokenRefused(1004, "the token has expired; sign a new one")
    if exp > now + MAX_LIFETIME_S + leeway:
        raise TokenRefused(1002, f"the token's exp is more than {MAX_LIFETIME_S / 3600:g} h away; sign"
                                 " tokens that expire sooner (30 minutes is usual)")
    if nbf is not None and now + leeway < nbf:
        raise TokenRefused(1003, "the token is not valid yet (nbf is in the future)")
    return token.claims


def verify_token(token: str, secret_key: str, now: float) -> dict[str, Any]:
    return verify(read_token(token), secret_key, now)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


async def authenticate_jwt(services: Services, request: Request) -> ApiKey:
    """The key whose access key signed the request's token; remember it for the answer."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise TokenRefused(1001, "missing Authorization: Bearer <JWT signed with your secret key>")
    token = read_token(auth[7:].strip())
    found = await services.store.by_access_key(issuer(token))
    if found is None:
        raise TokenRefused(1002, "unknown access key")
    key, sealed = found
    secret = SecretBox(services.server_secret).open(sealed, context_for(key.id, ACCESS_CONTEXT))
    verify(token, secret, services.clock())
    if key.revoked:
        raise TokenRefused(1000, "this access key's API key has been revoked")
    request.state.key_id = key.id
    return key
