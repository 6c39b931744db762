"""Real parts for the browser tests: a tiny-profile server subprocess (the integration
harness), a key in its database, a local image server, and headless Chromium driven by
Playwright. Chromium is Debian's package (``apt-get install chromium``); nothing is downloaded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.integration.harness import (
    ImageServer,
    Server,
    jpeg_bytes,
    png_bytes,
    server_env,
)
from tests.support.services import CHROMIUM, missing_chromium

ARTIFACTS = Path(__file__).parent / "artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
# Each denoising step is slowed down so that a job runs long enough (a few seconds) to show
# its progress, to wait in the queue behind another, and to be cancelled.
STEP_DELAY_S = "0.4"


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("playground-server")
    srv = Server(data, ["--profile", "tiny", "--debug-step-delay", STEP_DELAY_S]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api_key(pg_server: Server) -> str:
    """A key made the way an operator makes one; the secret is the last line printed."""
    done = subprocess.run(
        [sys.executable, "-m", "takeone.cli", "keys", "create", "--data-dir", str(pg_server.data_dir),
         "--credits", "1000"], check=False, capture_output=True, text=True, timeout=60,
        env=server_env())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer({
        "/first.jpg": ("image/jpeg", jpeg_bytes()),
        "/last.png": ("image/png", png_bytes((400, 300), (10, 200, 90))),
        "/not-an-image.txt": ("text/plain", b"hello, I am not a picture"),
    })
    yield server
    server.close()


# Module scope, not session: while Playwright's sync API runs it holds an event loop on this
# thread, and asyncio.run() in tests collected after this folder would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if (why := missing_chromium()) is not None:  # a test not marked browser got here
        pytest.skip(why)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser, pg_server: Server) -> Iterator[Page]:
    """A fresh tab (its own session storage) on the server; fails the test on a script error."""
    context = browser.new_context(viewport=DESKTOP, base_url=pg_server.url)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
