"""Image work (decoding, scaling, storing a client's pictures) on its own small thread pool.

Store calls (key checks, status polls, submits) run on the event loop's default thread pool;
if image work shared it, a few huge pictures could take every thread and stall every other
key's requests. Here it gets :data:`THREADS` threads of its own, and at most
:data:`MAX_REQUESTS` requests may be in image work in one process at once (the rest get a 429
with ``Retry-After``), so the memory it can hold is bounded too: each request by the body
limit and the decoder's pixel limit, the process by their product with ``MAX_REQUESTS``.

Example::

    work = ImageWork()
    with work.admit():
        image = await load_image(value, "image", policy, work.pool)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from takeone.core.errors import RateLimited

THREADS = 2
MAX_REQUESTS = 8
RETRY_AFTER_S = 5


class ImageWork:
    def __init__(self, threads: int = THREADS, max_requests: int = MAX_REQUESTS) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="takeone-images")
        self.max_requests = max_requests
        self.active = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """One request's image work; a 429 while :attr:`max_requests` are already at it."""
        if self.active >= self.max_requests:
            raise RateLimited(f"the server is busy with other requests' images ({self.active} at"
                              f" once); retry in {RETRY_AFTER_S} s", RETRY_AFTER_S)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
