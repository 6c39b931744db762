"""Tests that need PostgreSQL or Chromium say so with a marker; where the service is missing
they are skipped with the package to install, and under TAKEONE_REQUIRE_SERVICES=1 (set by
.ci/run, whose machine installs both) such a skip fails the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.services import REQUIRE_ENV, missing_chromium, missing_postgres

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
# What a test module does to reach a PostgreSQL server (the services' own module aside).
USES_POSTGRES = re.compile(r"\b(shared_server\(|PostgresServer\(|pg_url\b|ClusterStack\()")

SAMPLE = '''
import pytest

@pytest.mark.browser
def test_browser_skipped():
    pytest.skip("no Chromium at /nowhere (apt-get install chromium)")

@pytest.mark.postgres
def test_postgres_runs():
    pass

@pytest.mark.postgres
def test_postgres_skipped():
    pytest.skip("no PostgreSQL server binaries")

def test_unmarked_skip():
    pytest.skip("not a service")
'''


def test_every_module_that_starts_postgres_is_marked() -> None:
    unmarked = []
    for path in sorted(TESTS.rglob("*.py")):
        text = path.read_text()
        if path.name in ("conftest.py", "services.py", Path(__file__).name) or not USES_POSTGRES.search(text):
            continue
        if "mark.postgres" not in text:
            unmarked.append(str(path.relative_to(ROOT)))
    assert unmarked == []


def test_the_ci_script_requires_the_services() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert f"export {REQUIRE_ENV}=1" in script
    assert script.rstrip().splitlines()[-1] == "python -m pytest"  # the README's command, as written


def test_this_machine_reports_what_is_missing_in_one_sentence() -> None:
    for why in (missing_postgres(), missing_chromium()):
        assert why is None or "apt-get install" in why or "install" in why


def _run_sample(tmp_path: Path, required: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
    if required:
        env[REQUIRE_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "tests.support.services",
                           "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_a_skipped_service_test_is_a_skip_outside_ci(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, required=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 3 skipped" in out.stdout, out.stdout


def test_a_skipped_service_test_fails_when_ci_requires_the_services(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, required=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 failed, 1 passed, 1 skipped" in out.stdout, out.stdout
    assert "test_browser_skipped needs browser and was skipped (no Chromium at /nowhere" in out.stdout
    assert "test_postgres_skipped needs postgres" in out.stdout
