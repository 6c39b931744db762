"""Image work has its own threads and a cap on the requests at it at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from takeone.core.errors import RateLimited
from takeone.edge.imagework import ImageWork
from takeone.media.images import FetchPolicy, load_image
from tests.integration.harness import png_bytes


def test_requests_over_the_cap_get_a_429_and_the_slot_is_given_back() -> None:
    work = ImageWork(threads=1, max_requests=1)
    with work.admit():
        with pytest.raises(RateLimited, match="busy with other requests' images") as refused:
            with work.admit():
                pass
        assert refused.value.retry_after > 0
    with work.admit():
        assert work.active == 1
    assert work.active == 0


def test_decoding_runs_on_the_image_threads() -> None:
    import base64

    work = ImageWork(threads=1)
    seen: list[str] = []
    original = work.pool.submit

    def spy(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        return original(lambda: (seen.append(threading.current_thread().name), fn(*args, **kwargs))[1])

    work.pool.submit = spy  # type: ignore[method-assign]
    value = base64.b64encode(png_bytes((64, 48))).decode()
    image = asyncio.run(load_image(value, "image", FetchPolicy(), work.pool))
    assert image.size == (64, 48)
    assert seen and all(name.startswith("takeone-images") for name in seen)
