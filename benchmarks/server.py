"""A ``takeone serve --profile tiny`` subprocess for the benchmarks that need only a URL and a key."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.services.server import free_port


def start_server(data_dir: Path, credits: float = 1_000_000,
                 extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], str, str]:
    """The server on a free port (with ``extra`` serve flags), ready, and a key with
    ``credits``: (process, url, key)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "takeone.cli", "serve", "--profile", "tiny",
                             "--data-dir", str(data_dir), "--port", str(port), "--log-level", "warning",
                             *extra])
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited while starting")
        time.sleep(0.2)
    out = subprocess.run([sys.executable, "-m", "takeone.cli", "keys", "create", "--data-dir",
                          str(data_dir), "--credits", str(credits)], capture_output=True, text=True, check=True)
    return proc, url, out.stdout.strip().splitlines()[-1]
