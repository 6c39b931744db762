"""The system services the suite starts for real, and what happens when one is missing.

A test that needs PostgreSQL carries ``@pytest.mark.postgres``; one that drives Chromium,
``@pytest.mark.browser``. Where the service is not installed such a test is skipped before
it starts, with a sentence naming the package to install. CI installs both, so ``.ci/run``
sets ``TAKEONE_REQUIRE_SERVICES=1``: then every skip of a test so marked, whatever raised
it, is reported as a failure and the run fails.

tests/conftest.py takes these hooks; they are plain functions so a test can check them::

    missing_postgres()   # None, or why the PostgreSQL tests cannot run here
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Generator
from pathlib import Path

import pytest

from benchmarks.services.postgres import find_bindir

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_ENV = "TAKEONE_REQUIRE_SERVICES"
SERVICE_MARKS = ("postgres", "browser")


def missing_postgres() -> str | None:
    """Why a throwaway PostgreSQL server cannot start here, or None."""
    try:
        find_bindir()
    except RuntimeError:
        return ("no PostgreSQL server binaries (initdb, pg_ctl) via pg_config, /usr/lib/postgresql/*/bin "
                "or PATH (apt-get install postgresql)")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL cannot run as root (install util-linux)"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no postgres OS user to run PostgreSQL as (apt-get install postgresql)"
    return None


def missing_chromium() -> str | None:
    """Why the browser tests cannot start Chromium here, or None."""
    return None if CHROMIUM.exists() else f"no Chromium at {CHROMIUM} (apt-get install chromium)"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a marked test, with the reason, where its service is missing."""
    for name, missing in (("postgres", missing_postgres), ("browser", missing_chromium)):
        if item.get_closest_marker(name) is not None and (why := missing()) is not None:
            pytest.skip(why)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Under ``TAKEONE_REQUIRE_SERVICES=1`` a skipped postgres or browser test fails."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    marks = [name for name in SERVICE_MARKS if item.get_closest_marker(name) is not None]
    if report.skipped and marks and services_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} needs {' and '.join(marks)} and was skipped ({reason}), but "
                           f"{REQUIRE_ENV}=1 says this machine has every service the suite starts")
