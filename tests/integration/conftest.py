from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ImageServer, Server, jpeg_bytes, png_bytes


@pytest.fixture(scope="session")
def images() -> Iterator[ImageServer]:
    server = ImageServer({
        "/first.jpg": ("image/jpeg", jpeg_bytes()),
        "/last.png": ("image/png", png_bytes((400, 300), (10, 200, 90))),
        "/square.png": ("image/png", png_bytes((256, 256))),
        "/not-an-image.txt": ("text/plain", b"hello, I am not a picture"),
    })
    yield server
    server.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared tiny-profile server for the tests that do not break it."""
    srv = Server(tmp_path_factory.mktemp("shared-server"), ["--profile", "tiny"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared tiny-profile server whose steps take 0.3 s, so requests stay queued and
    running long enough to watch and cancel (the dialect tests share it). A test on it uses
    keys of its own and waits for, or cancels, every job it starts, so the next test finds
    the queue drained."""
    srv = Server(tmp_path_factory.mktemp("slow-server"), ["--profile", "tiny", "--debug-step-delay", "0.3"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def stepping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared tiny-profile server whose steps take 1 s, for tests that cancel, revoke or
    queue behind a running job. Each uses keys of its own and ends its jobs (cancelled,
    revoked or waited for) before it returns, so the next one finds the worker free."""
    srv = Server(tmp_path_factory.mktemp("stepping-server"), ["--profile", "tiny", "--debug-step-delay", "1"]).start()
    yield srv
    srv.stop()


@pytest.fixture()
def fresh_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
