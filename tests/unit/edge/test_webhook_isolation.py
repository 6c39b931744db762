"""One tenant's receiver cannot hold another's webhooks: real sockets, the real POST.

A *trickling* receiver answers a status line and then one header byte a second; a *hanging*
one accepts and never answers. Beside them a normal receiver gets its delivery at once, each
slow attempt ends at the total deadline, one receiver gets at most its share of connections,
and deliveries that wait for a slot are measured and noted on ``/healthz``.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.core.telemetry import webhook_late_seconds
from takeone.edge.background.webhooks.sender import Event, WebhookSender
from takeone.edge.health import health
from takeone.edge.services import Services
from tests.integration.webhooks import Receiver

TIMEOUT_S = 2.0


class SlowReceiver:
    """Accepts connections; ``trickle``: a status line, then a header byte each 0.5 s;
    else it reads the request and never answers. Records when each client hung up."""

    def __init__(self, trickle: bool) -> None:
        self.trickle = trickle
        self.connections = 0
        self.hung_up: list[float] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closing = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.connections += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            if self.trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self.closing.is_set():
                readable, _, _ = select.select([conn], [], [], 0.5)
                try:
                    if readable and not conn.recv(65536):
                        self.hung_up.append(time.monotonic())
                        return
                    if self.trickle:
                        conn.sendall(b"X")
                except OSError:
                    self.hung_up.append(time.monotonic())
                    return

    def close(self) -> None:
        self.closing.set()
        self.sock.close()


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    return Event("update", {"id": job.id, "status": status.value})


def _services(tmp_path: Path, timeout_s: float = TIMEOUT_S, late_note_s: float = 30.0) -> Services:
    return Services.build(Settings(data_dir=tmp_path, profile="tiny", run_workers=False,
                                   fetch_allow=frozenset({"127.0.0.1"}), webhook_timeout_s=timeout_s,
                                   webhook_late_note_s=late_note_s))


async def _running_job(services: Services, key_id: str, job_id: str, url: str) -> None:
    """A job that became PROCESSING: one delivery to ``url`` is due."""
    job = Job(id=job_id, key_id=key_id, task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,
              created_at=services.clock(), dialect="test", webhook_url=url)
    await services.store.submit(job, SubmitLimits(None, 100))
    claimed = await services.store.claim("w", 300)
    assert claimed is not None and claimed.id == job_id


async def _until(check: Callable[[], bool], limit_s: float) -> None:
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)


def test_a_trickling_and_a_hanging_receiver_do_not_delay_a_normal_one(tmp_path: Path) -> None:
    trickle, hang, normal = SlowReceiver(trickle=True), SlowReceiver(trickle=False), Receiver()
    services = _services(tmp_path)

    async def run() -> float:
        key = (await services.store.create(100.0)).key
        await _running_job(services, key.id, "slow1", trickle.url())
        await _running_job(services, key.id, "slow2", hang.url())
        sender = WebhookSender(services, {"test": render})
        loop = asyncio.create_task(sender.run_forever())
        await asyncio.sleep(0.8)  # both slow attempts are under way
        assert trickle.connections == 1 and hang.connections == 1
        other = (await services.store.create(100.0)).key
        queued_at = time.time()
        await _running_job(services, other.id, "fast", normal.url())
        await _until(lambda: bool(normal.got), 10.0)
        waited = time.time() - queued_at
        await asyncio.sleep(TIMEOUT_S + 1.5)  # the slow attempts' deadline has passed
        loop.cancel()
        return waited

    try:
        started = time.monotonic()
        waited = asyncio.run(run())
        assert normal.got and normal.got[0].json() == {"id": "fast", "status": "PROCESSING"}
        assert waited < 2.0, f"the normal receiver's delivery waited {waited:.1f} s"
        # The trickling answer never completes: the sender hangs up at the total deadline.
        assert trickle.hung_up and trickle.hung_up[0] - started < TIMEOUT_S + 2.0
        assert hang.hung_up and hang.hung_up[0] - started < TIMEOUT_S + 2.0
    finally:
        for receiver in (trickle, hang, normal):
            receiver.close()


def test_one_receiver_gets_its_share_and_waiting_deliveries_are_noted(tmp_path: Path) -> None:
    hang, normal = SlowReceiver(trickle=False), Receiver()
    services = _services(tmp_path, timeout_s=6.0, late_note_s=0.5)

    async def run() -> tuple[int, float, list[str]]:
        key = (await services.store.create(100.0)).key
        for n in range(6):
            await _running_job(services, key.id, f"h{n}", hang.url())
        sender = WebhookSender(services, {"test": render}, max_in_flight=3, per_receiver=2)
        loop = asyncio.create_task(sender.run_forever())
        await asyncio.sleep(1.0)
        share = hang.connections  # two at once, the other four put back
        await _running_job(services, key.id, "n1", normal.url())
        await asyncio.sleep(0.5)
        delivered_beside = len(normal.got)
        sender.max_in_flight = 2  # every slot is now taken by the hanging receiver
        await _running_job(services, key.id, "n2", normal.url())
        await asyncio.sleep(1.2)
        late = webhook_late_seconds()
        _, body = await health(services)
        loop.cancel()
        assert delivered_beside == 1
        return share, late, list(body["notes"])  # type: ignore[call-overload]

    try:
        share, late, notes = asyncio.run(run())
        assert share == 2
        assert late > 0.5
        assert any("webhook deliveries are late" in note for note in notes), notes
    finally:
        hang.close()
        normal.close()
