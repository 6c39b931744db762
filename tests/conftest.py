"""Suite-wide hooks: tests marked ``postgres`` or ``browser`` are skipped, with the package to
install, where that service is missing, and fail instead under ``TAKEONE_REQUIRE_SERVICES=1``
(as ``.ci/run`` sets it). See tests/support/services.py."""

from tests.support.services import pytest_runtest_makereport, pytest_runtest_setup

__all__ = ["pytest_runtest_makereport", "pytest_runtest_setup"]
