"""Every Python snippet in the README runs as written against a local tiny-profile server:
the keys come from the environment variables the README exports (``TAKEONE_KEY``,
``KLING_ACCESS_KEY``/``KLING_SECRET_KEY``, ``TAKEONE_WEBHOOK_SECRET``), the image is a
``first.jpg`` in the working folder, and the webhook receiver snippet receives the jobs'
deliveries. Only the ports change (the README's 8000 and 9000 may be taken here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Server, free_port, jpeg_bytes

README = Path(__file__).resolve().parents[2] / "README.md"
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _snippets() -> list[str]:
    return PYTHON.findall(README.read_text())


def _cli(data_dir: Path, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "takeone.cli", *args, "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _value(output: str, label: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(label))


def test_the_readme_has_its_snippets() -> None:
    snippets = _snippets()
    assert len(snippets) >= 5 and any("HTTPServer(" in s for s in snippets)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path / "takeone-data", ["--profile", "tiny"]).start()  # --fetch-allow 127.0.0.1
    yield started
    started.stop()


def test_every_python_snippet_runs_as_written(server: Server, tmp_path: Path) -> None:
    made = _cli(server.data_dir, "keys", "create", "--credits", "100", "--key-pair")
    key_id, secret = made.split()[1], made.strip().splitlines()[-1]
    whsec = _cli(server.data_dir, "keys", "webhook-secret", key_id).strip().splitlines()[-1]
    env = dict(os.environ, TAKEONE_KEY=secret, TAKEONE_WEBHOOK_SECRET=whsec,
               KLING_ACCESS_KEY=_value(made, "access key"), KLING_SECRET_KEY=_value(made, "secret key"))
    (tmp_path / "first.jpg").write_bytes(jpeg_bytes((640, 360)))
    snippets = [s.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}") for s in _snippets()]
    receiver_code = next(s for s in snippets if "HTTPServer(" in s)
    port = free_port()
    receiver_log = tmp_path / "receiver.log"
    with receiver_log.open("wb") as out:
        receiver = subprocess.Popen([sys.executable, "-c", receiver_code.replace("9000", str(port))], env=env,
                                    cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        _cli(server.data_dir, "keys", "webhook", key_id, f"http://127.0.0.1:{port}/")
        for code in snippets:
            if code is receiver_code:
                continue
            run = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=300)
            assert run.returncode == 0, f"{code}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr[-3000:]}"
            assert "Traceback" not in run.stderr and "Warning" not in run.stderr, run.stderr
        assert (tmp_path / "out.mp4").read_bytes()[4:8] == b"ftyp"
        assert (tmp_path / "fox.mp4").read_bytes()[4:8] == b"ftyp"
        deadline = time.monotonic() + 60
        while "video.completed" not in receiver_log.read_text() or "succeed" not in receiver_log.read_text():
            assert receiver.poll() is None and time.monotonic() < deadline, receiver_log.read_text()
            time.sleep(0.3)
        assert "Traceback" not in receiver_log.read_text(), receiver_log.read_text()
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
