"""A poster frame: the first frame of a finished MP4 as a JPEG (worker side: imports PyAV).

Example::

    jpeg = poster_jpeg(Path("tmp/job/out.mp4"))
"""

from __future__ import annotations

import io
from pathlib import Path

QUALITY = 90


def poster_jpeg(mp4: Path) -> bytes:
    import av

    with av.open(str(mp4)) as container:
        frame = next(container.decode(video=0))
        image = frame.to_image()  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()
