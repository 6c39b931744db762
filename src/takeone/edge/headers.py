"""Security headers on every answer: what a browser must not do with this server's pages.

Every response gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``
(a signed download link never leaks through a Referer). An HTML page gets a
``Content-Security-Policy`` with ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``
(no other site may frame it and click through it); a page that brings its own policy (the
playground, /docs, /redoc) keeps it, any other HTML gets :data:`DEFAULT_HTML_CSP`.

Example::

    app.add_middleware(SecurityHeaders)
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HTML_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_csp(html: str, extra: str = "") -> str:
    """A policy for one of this server's own pages: assets from this server only, and the
    page's inline scripts allowed by their hashes (nothing else inline runs)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline';"
            f" img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none';"
            f" form-action 'none'; frame-ancestors 'none'{extra}")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", DEFAULT_HTML_CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
