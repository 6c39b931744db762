"""What a first-time user meets at the command line: the first example of ``takeone --help``
runs without weights, ``takeone profiles`` fits a terminal, a missing ``--image`` file says so,
``--fetch-allow 127.0.0.1`` covers ``localhost``, and ``duration: 5.0`` is refused by name."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from takeone.cli.main import main
from takeone.edge.dialects.kling.body import Text2VideoBody
from tests.integration.harness import ImageServer, Server


def _takeone(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def test_the_first_help_example_runs_without_weights(tmp_path: Path) -> None:
    help_text = _takeone("--help").stdout
    first = next(line.strip() for line in help_text.splitlines() if line.strip().startswith("takeone "))
    env = {k: v for k, v in os.environ.items() if k != "TAKEONE_WEIGHTS"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))  # an empty cache: no weights at all
    run = _takeone(*shlex.split(first)[1:], cwd=tmp_path, env=env)
    assert run.returncode == 0, f"{first}\n{run.stderr[-2000:]}"
    assert any(p.suffix == ".mp4" and p.stat().st_size > 1000 for p in tmp_path.iterdir()), run.stdout


def test_profiles_fit_a_terminal_and_mark_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert any(line.startswith("* ltx-2 ") for line in lines)  # the default
    tiny = next(line for line in lines if line.startswith("  tiny "))
    assert "built in" in tiny
    ltx = next(line for line in lines if line.startswith("* ltx-2 "))
    assert ("missing" in ltx) != ("present" in ltx)


def test_a_missing_image_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "kling-2.1", "--profile", "tiny", "--image", "missing.jpg"]) == 2
    assert "no such file: missing.jpg" in capsys.readouterr().err


def test_a_loopback_refusal_names_fetch_allow(tmp_path: Path, images: ImageServer) -> None:
    url = f"http://localhost:{images.port}/first.jpg"
    run = _takeone("generate", "kling-2.1", "--profile", "tiny", "--image", url, cwd=tmp_path,
                   env=dict(os.environ, HF_HUB_OFFLINE="1", TAKEONE_FETCH_ALLOW=""))
    assert run.returncode == 1 and "loopback" in run.stderr and "--fetch-allow" in run.stderr, run.stderr


def test_fetch_allow_127_0_0_1_covers_localhost(server: Server, images: ImageServer) -> None:
    assert server.fetch_allow == ("127.0.0.1",)
    r = httpx.post(server.url + "/v2/kling-2.1", json={"image": f"http://localhost:{images.port}/first.jpg"},
                   headers={"x-api-key": server.key(10)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("duration", [5.0, 10.0, True, [5]])
def test_a_duration_that_is_not_an_integer_is_refused(server: Server, duration: object) -> None:
    r = httpx.post(server.url + "/v2/kling-2.6", json={"prompt": "a fox", "duration": duration},
                   headers={"x-api-key": server.key(10)})
    assert r.status_code == 400 and r.json()["error"].startswith("duration: "), r.text


def test_integer_durations_and_the_other_dialects_keep_their_types(server: Server) -> None:
    for duration in (5, "5"):
        r = httpx.post(server.url + "/v2/kling-2.6", headers={"x-api-key": server.key(10)},
                       json={"prompt": "a fox", "duration": duration, "generate_audio": False})
        assert r.status_code == 200, r.text
    assert Text2VideoBody.model_validate({"prompt": "x", "duration": "10"}).duration == "10"
    for wrong in (10, 10.0):
        with pytest.raises(ValueError):
            Text2VideoBody.model_validate({"prompt": "x", "duration": wrong})


def test_the_readme_first_five_minutes_runs_as_pasted(tmp_path: Path) -> None:
    """The second terminal's block, pasted into bash next to a running server (what ``./run``
    starts on a machine without weights: ``takeone serve --profile tiny``; the port aside; the
    venv's activation and pip lines skipped). The first block is the two commands."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## First five minutes", 1)[1].split("\n## ", 1)[0]
    first, second = [b for lang, b in re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M)
                     if lang == "bash"][:2]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands == ["./run", "bash .ci/run"]
    script = "\n".join(line for line in second.splitlines() if not line.startswith(". .venv"))
    server = Server(tmp_path / "takeone-data", ["--profile", "tiny"], fetch_allow=()).start()
    try:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        run = subprocess.run(["bash", "-euc", script.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert run.returncode == 0 and "saved out.mp4" in run.stdout, run.stdout + run.stderr
    assert (tmp_path / "out.mp4").read_bytes()[4:8] == b"ftyp"
