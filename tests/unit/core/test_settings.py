"""The one settings object: where its files live, when it is a cluster, which prices file it
reads, and the fetch allow-list read from the environment only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeone.core.settings import Settings, env_fetch_allow


def test_files_live_in_the_data_folder_unless_named(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.db_path == tmp_path / "takeone.db"
    assert s.scratch_dir == tmp_path / "tmp"
    assert s.secret_path == tmp_path / "secret.key"
    assert Settings(data_dir=tmp_path, secret_file=tmp_path / "elsewhere.key").secret_path == tmp_path / "elsewhere.key"


@pytest.mark.parametrize("database,storage,clustered", [
    (None, None, False), ("postgresql://db/t", None, True), (None, "s3://b/p", True),
    ("postgresql://db/t", "s3://b/p", True),
])
def test_a_database_or_a_bucket_makes_a_cluster(database: str | None, storage: str | None, clustered: bool,
                                                tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, database_url=database, storage_url=storage).clustered is clustered


def test_the_prices_file_is_the_flag_or_one_in_the_data_folder(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).resolved_prices_file() is None
    (tmp_path / "prices.toml").write_text("")
    assert Settings(data_dir=tmp_path).resolved_prices_file() == tmp_path / "prices.toml"
    named = tmp_path / "mine.toml"
    assert Settings(data_dir=tmp_path, prices_file=named).resolved_prices_file() == named


@pytest.mark.parametrize("raw,hosts", [
    ("", set()), ("a.example", {"a.example"}), ("a.example, 10.0.0.2 ,b", {"a.example", "10.0.0.2", "b"}),
    (" ,, ", set()), ("x x", {"x"}),
])
def test_the_fetch_allow_list(raw: str, hosts: set[str]) -> None:
    assert env_fetch_allow({"TAKEONE_FETCH_ALLOW": raw}) == frozenset(hosts)
    assert env_fetch_allow({}) == frozenset()


def test_the_environment_is_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEONE_FETCH_ALLOW", "late.example")
    assert env_fetch_allow() == frozenset({"late.example"})
