"""Server paths are cut from text that leaves the server; URLs and routes are kept."""

from __future__ import annotations

import pytest

from takeone.core.redact import without_paths


@pytest.mark.parametrize("text,expected", [
    ("[Errno 28] No space left on device: '/srv/data/tmp/j1/frames.mp4'",
     "[Errno 28] No space left on device: '.../frames.mp4'"),
    ("OSError: Unable to load /home/u/weights/vae.safetensors (bad)",
     "OSError: Unable to load .../vae.safetensors (bad)"),
    ("C:\\data\\x\\y.bin failed", ".../y.bin failed"),
    ("see https://example.com/a/b, 1/2 and /healthz", "see https://example.com/a/b, 1/2 and /healthz"),
    ("copy /tmp/a/in.png to /var/b/out.mp4", "copy .../in.png to .../out.mp4"),
    ("relative models/ltx2/vae.bin and ./x/y stay", "relative models/ltx2/vae.bin and ./x/y stay"),
    ("file:///srv/x/y.mp4 and s3://bucket/videos/a.mp4", "file:///srv/x/y.mp4 and s3://bucket/videos/a.mp4"),
    ("/home/u@host/.cache/hf-1~x/w+1.bin", ".../w+1.bin"),
])
def test_paths_are_cut(text: str, expected: str) -> None:
    assert without_paths(text) == expected
