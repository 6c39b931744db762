"""Text that leaves the server (a job's error, the public ``/healthz``) without this machine's
file paths: an absolute path (``/srv/takeone/tmp/0b1c.../out.mp4``, ``C:\\data\\x``) becomes
its last part, which still says what it was (``.../out.mp4``).

Example::

    without_paths("[Errno 28] No space left on device: '/srv/data/tmp/j1/frames.mp4'")
    # "[Errno 28] No space left on device: '.../frames.mp4'"
"""

from __future__ import annotations

import re

_PATH = re.compile(r"(?<![\w.:/])(?:/|[A-Za-z]:\\)(?:[\w.@+~-]+[/\\])+([\w.@+~-]+)")


def without_paths(text: str) -> str:
    return _PATH.sub(lambda m: ".../" + m.group(1), text)
