"""200 concurrent clients poll status while tiny jobs run: no errors (latency is reported,
not asserted; figures live in benchmarks/load.py)."""

from __future__ import annotations

import asyncio

from benchmarks.load import poll_load, submit_jobs
from tests.integration.harness import Server


def test_200_clients_polling_get_no_errors(server: Server) -> None:
    key = server.key(100)
    status_urls = submit_jobs(server.url, key, 5)
    result = asyncio.run(poll_load(server.url, key, status_urls, clients=200, polls=5))
    print(f"\nstatus polling: {result}")
    assert result.requests == 1000
    assert result.errors == 0
