"""The README's first command, ``./run``, from a fresh clone of this repository: the first run
makes ``.venv`` and serves (``tiny``, saying so, where the default profile has no weights), a
key and a video work through it, SIGINT stops it; the second run installs nothing and serves.

torch (``./run --torch`` the first time, ``TAKEONE_TORCH`` the second) is this environment's
``TAKEONE_TORCH`` when set, else ``torch==<the version these tests run on>``, which pip takes from
its cache or local wheels (as ``.ci/run`` does) rather than downloading gigabytes. On two busy
cores the first run's install took 71 s to 121 s (``time TAKEONE_TORCH=torch==2.13.0 ./run
--help`` in a fresh clone), the whole test 118 s to 219 s."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import free_port
from tests.mp4probe import probe

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The commands of the README's first code block."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block is not None, "README.md has no bash code block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_the_readmes_first_block_is_the_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2 and commands[1] == "bash .ci/run", commands
    assert shlex.split(commands[0])[0] == "./run" and (REPO / "run").stat().st_mode & 0o111, commands


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """This environment without this checkout's venv and source path, with no weights anywhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "TAKEONE_WEIGHTS", "TAKEONE_DATA_DIR", "PYTHONHOME")}
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(venv))
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
               TAKEONE_TORCH=os.environ.get("TAKEONE_TORCH") or f"torch=={version('torch').split('+')[0]}")
    return env


class Run:
    """One ``./run`` as a real process, its output in a file."""

    def __init__(self, clone: Path, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        command = shlex.split(readme_commands()[0])
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*command, *args, "--port", str(self.port)], cwd=clone, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"./run exited {self.proc.returncode}:\n{self.log()[-5000:]}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not healthy in {timeout} s:\n{self.log()[-5000:]}")

    def stop(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process ./run started as: it execs the server, so the server itself
        shuts down (a shell in between would die alone and leave the server running)."""
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"./run did not stop on {sig.name}:\n{self.log()[-3000:]}") from None
        # uvicorn shuts down, then re-raises what stopped it: a supervisor's SIGTERM is a clean
        # stop (0), Ctrl+C ends as an interrupt does in a shell (130)
        assert code == (130 if sig == signal.SIGINT else 0), f"exit {code}:\n{self.log()[-3000:]}"
        assert "Application shutdown complete" in self.log(), self.log()[-3000:]
        with pytest.raises(httpx.TransportError):
            httpx.get(self.url + "/healthz", timeout=2)


@pytest.mark.timeout(900)
def test_run_from_a_fresh_clone_serves_and_a_second_run_reuses_its_venv(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    try:
        env = _clean_env(tmp_path)
        started = time.monotonic()

        # The torch choice as a flag the first time, from TAKEONE_TORCH the second: the same choice.
        without = {k: v for k, v in env.items() if k != "TAKEONE_TORCH"}
        first = Run(clone, without, tmp_path / "first.log", "--torch", env["TAKEONE_TORCH"])
        try:
            first.wait_healthy(timeout=720)
            first_up = time.monotonic() - started
            log = first.log()
            assert "installing into .venv" in log and "nothing to install" not in log, log[-3000:]
            # No weights for the default profile here: tiny, with the way to the real ones.
            assert "serves --profile tiny" in log and "takeone pull ltx-2" in log, log[-3000:]
            created = subprocess.run([str(clone / ".venv/bin/takeone"), "keys", "create", "--credits", "100"],
                                     cwd=clone, env=env, capture_output=True, text=True, timeout=120)
            assert created.returncode == 0, created.stderr
            key = created.stdout.strip().splitlines()[-1]
            r = httpx.post(first.url + "/v1/kling-2.6", headers={"x-api-key": key}, timeout=300,
                           json={"prompt": "waves on a beach", "duration": "5", "generate_audio": False})
            assert r.status_code == 200 and r.headers["content-type"] == "video/mp4", r.text[:500]
            left = float(r.headers["x-remaining-credits"])
            assert left < 100
            video = probe(r.content)
            assert video.codec == "h264" and video.frames > 0 and video.audio_codec is None, video
        finally:
            first.stop(signal.SIGINT)
        assert (clone / "takeone-data").is_dir()  # the default data folder, under where ./run ran

        restarted = time.monotonic()
        second = Run(clone, env, tmp_path / "second.log")
        try:
            second.wait_healthy(timeout=120)
            second_up = time.monotonic() - restarted
            log = second.log()
            assert "nothing to install" in log, log[-3000:]
            assert "takeone: installing" not in log and "takeone: creating" not in log, log[-3000:]
            # Same data folder: the key and its balance after the first video are still there.
            credits = httpx.get(second.url + "/v1/get-user-credits", headers={"x-api-key": key}, timeout=10)
            assert credits.status_code == 200 and credits.json()["credits"] == pytest.approx(left), credits.text
        finally:
            second.stop(signal.SIGTERM)
        print(f"first run healthy after {first_up:.0f} s, second after {second_up:.1f} s")
    finally:
        shutil.rmtree(clone / ".venv", ignore_errors=True)  # 1.4 GB; the logs stay in tmp_path
