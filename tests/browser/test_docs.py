"""/docs and /redoc in a real browser under their security headers: Swagger UI and ReDoc
render with no policy violation, a key typed into "Authorize" is never stored by the
browser, and another site cannot frame the pages."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.integration.harness import Server

pytestmark = pytest.mark.browser


@pytest.fixture()
def violations(page: Page) -> list[str]:
    """Blocked scripts, styles or workers (ReDoc's "powered by" logo from its CDN is an image
    the policy blocks on purpose: the pages load nothing from elsewhere)."""
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text)
            if "Content Security Policy" in msg.text and "img-src" not in msg.text else None)
    return found


def test_swagger_renders_and_keeps_no_key(page: Page, api_key: str, violations: list[str]) -> None:
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    page.click("button.authorize")
    page.locator(".modal-ux input").first.fill(api_key)
    page.locator(".modal-ux button.authorize").first.click()
    page.locator(".modal-ux button", has_text="Logout").first.wait_for()  # Swagger UI holds the key now
    page.locator(".modal-ux button.close-modal").first.click()
    stored = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert api_key not in stored, stored
    assert not violations, violations


def test_redoc_renders(page: Page, violations: list[str]) -> None:
    page.goto("/redoc")
    page.wait_for_selector("h1")
    assert "takeone" in page.inner_text("h1")
    assert not violations, violations


@pytest.fixture()
def framing_site(pg_server: Server) -> Iterator[str]:
    """Another origin whose page frames this server's /docs."""
    html = f'<iframe id="f" src="{pg_server.url}/docs" width="800" height="600"></iframe>'.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("localhost", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_another_site_cannot_frame_the_docs(page: Page, framing_site: str) -> None:
    page.goto(framing_site)
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator(".swagger-ui").count() == 0
