"""Fixtures of the store tests: a fresh PostgreSQL database per test on one shared server."""

from __future__ import annotations

import pytest

from benchmarks.services.postgres import shared_server


@pytest.fixture()
def pg_url() -> str:
    """The URL of a new, empty database on the test process's PostgreSQL server."""
    return shared_server().new_database()
