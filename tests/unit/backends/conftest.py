"""Fixtures of the store tests: a fresh PostgreSQL database per test on one shared server."""

from __future__ import annotations

import pytest

from benchmarks.services.postgres import shared_server


@pytest.fixture()
def pg_url(request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database on the test process's PostgreSQL server (for a test
    marked ``postgres``, so that a missing server is a skip that CI turns into a failure)."""
    if request.node.get_closest_marker("postgres") is None:
        pytest.fail(f"{request.node.nodeid} uses PostgreSQL: mark it @pytest.mark.postgres")
    return shared_server().new_database()
