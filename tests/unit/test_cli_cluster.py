"""The cluster flags: parsed into Settings, refused with a sentence naming the flag, and the
key and schema commands working on a real shared PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.services.postgres import shared_server
from takeone.cli.main import build_parser, main
from takeone.cli.serve import serve_settings, worker_settings
from takeone.core.settings import Settings


def _settings(*argv: str) -> Settings:
    args = build_parser().parse_args(list(argv))
    return serve_settings(args) if argv[0] == "serve" else worker_settings(args)


def test_cluster_flags_become_settings(tmp_path: Path) -> None:
    s = _settings("serve", "--data-dir", str(tmp_path), "--database", "postgresql://u:pw@db:5432/t",
                  "--storage", "s3://videos/takeone", "--s3-endpoint", "http://127.0.0.1:9000",
                  "--workers", "ray", "--ray-address", "127.0.0.1:6379", "--min-workers", "0",
                  "--max-workers", "4", "--worker-gpus", "1", "--secret-file", str(tmp_path / "s.key"))
    assert (s.database_url, s.storage_url, s.s3_endpoint) == (
        "postgresql://u:pw@db:5432/t", "s3://videos/takeone", "http://127.0.0.1:9000")
    assert (s.worker_backend, s.ray_address, s.min_workers, s.max_workers) == ("ray", "127.0.0.1:6379", 0, 4)
    assert s.workers is None and s.secret_path == tmp_path / "s.key" and s.clustered
    local = _settings("worker", "--data-dir", str(tmp_path), "--workers", "3")
    assert (local.worker_backend, local.workers, local.clustered) == ("local", 3, False)
    assert local.secret_path == tmp_path / "secret.key"


@pytest.mark.parametrize(("argv", "flag", "value"), [
    (["--database", "mysql://db/t"], "--database", "mysql://db/t"),
    (["--database", "postgres-ish://u:hunter2@db/t"], "--database", "postgres-ish://u:***@db/t"),
    (["--storage", "/srv/videos"], "--storage", "/srv/videos"),
    (["--ray-address", "10.0.0.1:6379"], "--ray-address", "10.0.0.1:6379"),
    (["--workers", "ray", "--min-workers", "-1"], "--min-workers", "-1"),
    (["--workers", "ray", "--min-workers", "3", "--max-workers", "2"], "--max-workers", "2"),
    (["--workers", "ray", "--max-workers", "0"], "--max-workers", "0"),
    (["--workers", "ray", "--worker-gpus", "-1"], "--worker-gpus", "-1"),
])
def test_bad_cluster_flags_are_named(argv: list[str], flag: str, value: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--profile", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert flag in err and value in err, err
    assert "hunter2" not in err


def test_workers_takes_a_count_or_a_place(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", "kubernetes"])
    assert "local or ray" in capsys.readouterr().err


def _takeone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.postgres
def test_keys_and_schema_on_a_shared_database(tmp_path: Path) -> None:
    url = shared_server().new_database()
    upgraded = _takeone("db", "upgrade", "--database", url)
    assert upgraded.returncode == 0 and "schema version" in upgraded.stdout, upgraded.stderr
    # no data folder anywhere: the keys live in the database, not in a folder
    made = _takeone("keys", "create", "--database", url, "--data-dir", str(tmp_path / "nowhere"), "--credits", "5")
    assert made.returncode == 0, made.stderr
    listing = _takeone("keys", "list", "--database", url, "--data-dir", str(tmp_path / "elsewhere"))
    key_id = listing.stdout.splitlines()[1].split()[0]
    assert "5" in listing.stdout.splitlines()[1]
    credited = _takeone("keys", "credit", "--database", url, key_id, "2.5")
    assert "7.5" in credited.stdout, credited.stderr
    assert not (tmp_path / "elsewhere" / "takeone.db").exists()


def test_an_unreachable_database_is_one_sentence() -> None:
    out = _takeone("keys", "list", "--database", "postgresql://takeone:secretpw@127.0.0.1:1/takeone")
    assert out.returncode == 2
    assert "127.0.0.1:1" in out.stderr and "Traceback" not in out.stderr and "secretpw" not in out.stderr


def test_ray_workers_on_local_state_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from takeone.cli.serve import warn_about_placement

    caplog.set_level("WARNING", logger="takeone.serve")
    warn_about_placement(_settings("serve", "--data-dir", str(tmp_path), "--workers", "ray"))
    assert "--database and --storage" in caplog.text
    caplog.clear()
    warn_about_placement(_settings("serve", "--data-dir", str(tmp_path), "--workers", "ray",
                                   "--database", "postgresql://db/t"))
    assert "--storage s3://" in caplog.text
    caplog.clear()
    warn_about_placement(_settings("serve", "--data-dir", str(tmp_path), "--workers", "ray", "--database",
                                   "postgresql://db/t", "--storage", "s3://b/p"))
    warn_about_placement(_settings("serve", "--data-dir", str(tmp_path)))
    assert caplog.text == ""


@pytest.mark.postgres
def test_every_process_on_a_shared_database_must_hold_the_same_secret(tmp_path: Path) -> None:
    """A replica started with another secret file would seal credentials the others cannot
    open: the first secret used with a database is pinned, and a different one is refused."""
    url = shared_server().new_database()
    first, other = tmp_path / "first.key", tmp_path / "other.key"
    made = _takeone("keys", "create", "--database", url, "--credits", "1")
    key_id = made.stdout.split()[1]
    pinned = _takeone("keys", "key-pair", "--database", url, "--secret-file", str(first), key_id)
    assert pinned.returncode == 0, pinned.stderr
    again = _takeone("keys", "webhook-secret", "--database", url, "--secret-file", str(first), key_id)
    assert again.returncode == 0, again.stderr
    refused = _takeone("keys", "key-pair", "--database", url, "--secret-file", str(other), key_id)
    assert refused.returncode == 2 and "--secret-file" in refused.stderr and "same file" in refused.stderr
    server = _takeone("serve", "--database", url, "--secret-file", str(other), "--no-workers", "--profile", "tiny",
                      "--data-dir", str(tmp_path / "replica"), "--port", "1")
    assert server.returncode == 2 and str(other) in server.stderr and "Traceback" not in server.stderr


def test_ray_workers_make_a_ray_pool_without_starting_ray(tmp_path: Path) -> None:
    """``--workers ray`` picks the Ray pool (it connects only when started); a count picks
    that many local worker processes."""
    from takeone.dispatch.local.dispatcher import LocalDispatcher
    from takeone.dispatch.ray.pool import RayDispatcher
    from takeone.edge.services import Services

    ray_services = Services.build(_settings("serve", "--data-dir", str(tmp_path), "--workers", "ray",
                                            "--max-workers", "2"))
    assert isinstance(ray_services.make_dispatcher(), RayDispatcher)
    local = Services.build(_settings("serve", "--data-dir", str(tmp_path / "local"), "--workers", "2"))
    made = local.make_dispatcher()
    assert isinstance(made, LocalDispatcher) and len(made.slots) == 2
