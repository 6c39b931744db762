"""One webhook POST, behind the same address guard as image fetches.

The receiver's host is resolved once; unless ``--fetch-allow`` names it, every address it
resolves to must be public (no loopback, private, link-local, CGNAT, metadata...: see
:mod:`takeone.media.netguard`), and the connection goes to a checked address with the
original ``Host`` header and TLS server name. Redirects are not followed (a delivery must
reach the URL the client gave). Proxy variables are ignored.

Example::

    outcome = await post("https://hooks.example.com/t1", body, headers, policy, timeout_s=15)
    # the whole attempt, the answer's last byte included, ends within 15 s
    outcome.delivered, outcome.retry, outcome.detail
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass

import httpx

from takeone.core.errors import InvalidRequest
from takeone.edge.background.webhooks.schedule import is_retryable
from takeone.media import netguard
from takeone.media.images import FetchPolicy

USER_AGENT = "takeone-webhooks/1"
MAX_URL = 2048


class UrlRefused(Exception):
    """The URL may not be delivered to (malformed, or an address the guard refuses)."""

    def __init__(self, reason: str, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool
    detail: str
    retry_after: float | None = None
    timed_out: bool = False  # the receiver was slow (not refused, not down)


def parse_url(value: str) -> httpx.URL:
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise UrlRefused(f"must be an http(s) URL of at most {MAX_URL} characters")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise UrlRefused(f"is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UrlRefused("must be an http:// or https:// URL with a host")
    if url.userinfo:
        raise UrlRefused("must not carry a user name or password")
    return url


async def checked_addresses(url: httpx.URL, policy: FetchPolicy) -> tuple[netguard.IPAddress, ...]:
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await netguard.resolve(host, port)
    except (OSError, UnicodeError):
        raise UrlRefused(f"host {host!r} does not resolve", temporary=True) from None
    if not policy.allows(host):
        for address in addresses:
            reason = netguard.forbidden_reason(address)
            if reason is not None:
                hint = (f"; a development server started with --fetch-allow {host} delivers to it"
                        if reason.startswith(("loopback", "private")) else "")
                raise UrlRefused(f"host {host!r} is refused: it is a {reason} address"
                                 f" (the server delivers webhooks to public addresses only{hint})")
    return addresses


async def check_webhook_url(value: str, field: str, policy: FetchPolicy) -> str:
    """``value`` if the server may deliver to it now; else a 400 naming ``field``."""
    try:
        await checked_addresses(parse_url(value), policy)
    except UrlRefused as exc:
        raise InvalidRequest(field, value, exc.reason) from None
    return value


async def post(url_text: str, body: bytes, headers: dict[str, str], policy: FetchPolicy,
               timeout_s: float) -> Outcome:
    """One attempt, all of it (resolving, connecting, sending, the whole answer) within
    ``timeout_s``: a receiver that trickles its answer a byte at a time is cut off too."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _attempt(url_text, body, headers, policy, timeout_s)
    except TimeoutError:
        return Outcome(False, True, f"timed out after {timeout_s:g} s", timed_out=True)


async def _attempt(url_text: str, body: bytes, headers: dict[str, str], policy: FetchPolicy,
                   timeout_s: float) -> Outcome:
    try:
        url = parse_url(url_text)
        addresses = await checked_addresses(url, policy)
    except UrlRefused as exc:
        return Outcome(False, exc.temporary, exc.reason)
    last = "no address answered"
    for address in addresses:
        try:
            return await _post_to(url, address, body, headers, timeout_s)
        except httpx.TimeoutException:
            return Outcome(False, True, f"timed out after {timeout_s:g} s", timed_out=True)
        except httpx.HTTPError as exc:
            last = f"could not connect ({type(exc).__name__})"
    return Outcome(False, True, last)


async def _post_to(url: httpx.URL, address: netguard.IPAddress, body: bytes,
                   headers: dict[str, str], timeout_s: float) -> Outcome:
    host = url.raw_host.decode("ascii")
    request = httpx.Request(
        "POST", url.copy_with(host=str(address), fragment=None), content=body,
        headers={**headers, "Host": url.netloc.decode("ascii"), "User-Agent": USER_AGENT},
        extensions={"sni_hostname": host} if url.scheme == "https" else {})
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        response = await client.send(request, stream=True)
        await response.aclose()
    return judge(response.status_code, response.headers.get("retry-after"))


def judge(status: int, retry_after: str | None, now: float | None = None) -> Outcome:
    """What an answer means: 2xx delivered; 408, 429, 5xx retried; anything else ends it."""
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return Outcome(True, False, f"delivered ({detail})")
    if status == 410:
        return Outcome(False, False, f"{detail}: the receiver asked to stop")
    if is_retryable(status):
        return Outcome(False, True, detail, parse_retry_after(retry_after, now))
    return Outcome(False, False, f"{detail}: not retried")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
