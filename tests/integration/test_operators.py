"""What operators and first-time users hit: idempotent retries, revocation, cancel answers,
numbers at the command line, a corrupt database, a huge image."""

from __future__ import annotations

import base64
import io
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.integration.harness import ImageServer, Server, running

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}  # 0.438


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_idempotency_key_conflicts(server: Server, images: ImageServer) -> None:
    key = server.key(10)
    h = {"x-api-key": key, "Idempotency-Key": "order-1"}
    first = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()
    again = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "duration": "5"}, headers=h)
    assert again.status_code == 200 and again.json()["request_id"] == first["request_id"]
    other_body = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "prompt": "a cat"}, headers=h)
    assert other_body.status_code == 409 and "order-1" in other_body.json()["error"]
    other_slug = httpx.post(server.url + "/v2/kling-2.1", json={"image": images.url("/first.jpg")}, headers=h)
    assert other_slug.status_code == 409 and "order-1" in other_slug.json()["error"]


def test_a_failed_request_frees_its_idempotency_key(stepping_server: Server) -> None:
    """A cancelled request charged nothing: the retry with the same key makes a new attempt,
    even when the balance no longer covers a second reservation at the time of the retry."""
    server = stepping_server
    key = server.key(0.5)
    h = {"x-api-key": key, "Idempotency-Key": "order-2"}
    failed = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
    same = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h)  # 0.062 left: no matter
    assert same.status_code == 200 and same.json()["request_id"] == failed
    assert httpx.post(f"{server.url}/v2/requests/{failed}/cancel", headers=h).status_code == 200
    retry = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers=h, timeout=120)
    assert retry.status_code == 200 and retry.headers["x-request-id"] != failed
    assert server.balance(key) == pytest.approx(0.5 - 0.438)


def test_revoking_a_key_fails_its_queued_jobs_uncharged(stepping_server: Server) -> None:
    server, data_dir = stepping_server, stepping_server.data_dir
    key = server.key(10)
    h = {"x-api-key": key}
    ids = [httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
           for _ in range(3)]
    listing = _cli("keys", "list", "--data-dir", str(data_dir)).stdout
    # this key's line (the server holds other tests' keys too): the list shows a key's first 7 characters
    key_id = next(line.split()[0] for line in listing.splitlines()
                  if line.startswith("key_") and line.split()[1] == key[:7])
    out = _cli("keys", "revoke", "--data-dir", str(data_dir), key_id)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(data_dir / "takeone.db")
    rows = db.execute("SELECT status, error, charge FROM jobs WHERE id IN (?, ?, ?)", ids).fetchall()
    assert {r[0] for r in rows} == {"FAILED"} and {r[2] for r in rows} == {"released"}
    assert all("revoked" in r[1] for r in rows)
    balance = db.execute("SELECT balance FROM api_keys WHERE id = ?", (key_id,)).fetchone()[0]
    assert balance == 10_000_000  # micro-credits: all released


def test_cancel_answers_200_then_409(server: Server) -> None:
    key = server.key(10)
    h = {"x-api-key": key}
    done = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers=h, timeout=120)
    r = httpx.post(f"{server.url}/v2/requests/{done.headers['x-request-id']}/cancel", headers=h)
    assert r.status_code == 409 and "COMPLETED" in r.json()["error"]


@pytest.mark.parametrize(("args", "message"), [
    (["keys", "create", "--credits", "-5"], "must not be negative"),
    (["keys", "create", "--credits", "nan"], "finite number"),
    (["keys", "create", "--credits", "inf"], "finite number"),
    (["keys", "create", "--credits", "1e13"], "finite number"),
    (["keys", "create", "--credits", "5", "--rate-limit", "0"], "at least 1"),
    (["keys", "create", "--credits", "5", "--rate-limit", "-1"], "at least 1"),
])
def test_numbers_at_the_command_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = _cli(*args, "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_keys_commands_name_what_is_wrong(tmp_path: Path) -> None:
    missing = _cli("keys", "list", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no takeone data folder" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    data = str(tmp_path / "d")
    assert _cli("keys", "create", "--credits", "100", "--data-dir", data).returncode == 0
    for args in (["keys", "credit", "key_nope", "1"], ["keys", "revoke", "key_nope"]):
        out = _cli(*args, "--data-dir", data)
        assert out.returncode == 2 and "no API key 'key_nope'" in out.stderr and "Traceback" not in out.stderr
    key_id = _cli("keys", "list", "--data-dir", data).stdout.splitlines()[1].split()[0]
    out = _cli("keys", "debit", key_id, "1000", "--data-dir", data)
    assert out.returncode == 2 and "negative" in out.stderr
    serve = _cli("serve", "--rate-limit", "0", "--data-dir", data, "--profile", "tiny")
    assert serve.returncode == 2 and "--rate-limit" in serve.stderr


def test_prices_file_with_nan_is_refused(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('["kling-2.6".pro]\n"5" = nan\n')
    out = _cli("serve", "--profile", "tiny", "--data-dir", str(tmp_path / "d"), "--prices", str(prices),
               "--port", "1")
    assert out.returncode != 0 and "bad price" in out.stderr


def test_a_corrupt_database_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert _cli("keys", "create", "--credits", "1", "--data-dir", str(data)).returncode == 0
    raw = bytearray((data / "takeone.db").read_bytes())
    raw[4096:8192] = b"\xff" * 4096  # a whole page of garbage
    (data / "takeone.db").write_bytes(bytes(raw))
    for suffix in ("-wal", "-shm"):
        (data / f"takeone.db{suffix}").unlink(missing_ok=True)
    out = _cli("serve", "--profile", "tiny", "--data-dir", str(data), "--port", "1")
    assert out.returncode == 2 and "database" in out.stderr and "Traceback" not in out.stderr


def _huge_jpeg_b64() -> str:
    """A 7050x4700 photo-like JPEG: noise, so a lossless copy at full size takes 37.5 MB."""
    buf = io.BytesIO()
    noise = Image.effect_noise((1410, 940), 80).convert("RGB").resize((7050, 4700))
    noise.save(buf, format="JPEG", quality=60)
    return base64.b64encode(buf.getvalue()).decode()


def test_a_huge_image_does_not_stall_other_clients(server: Server) -> None:
    """Decoding and storing a 7050x7050 image runs off the event loop: status polls from
    other clients keep being answered meanwhile (the bound is generous: before, they waited
    about 8 s)."""
    key = server.key(10)
    h = {"x-api-key": key}
    rid = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
    body = {"image": _huge_jpeg_b64(), "mode": "std"}
    poor = server.key(0)
    refused = httpx.post(server.url + "/v2/kling-2.1", json=body, headers={"x-api-key": poor}, timeout=60)
    assert refused.status_code == 406  # no image work for a key that cannot pay
    slowest: list[float] = []
    submit = threading.Thread(target=lambda: httpx.post(
        server.url + "/v2/kling-2.1", json=body, headers=h, timeout=120))
    submit.start()
    while submit.is_alive():
        started = time.monotonic()
        httpx.get(f"{server.url}/v2/requests/{rid}/status", headers=h, timeout=30)
        slowest.append(time.monotonic() - started)
        time.sleep(0.05)
    submit.join()
    assert max(slowest) < 2.0, slowest
    stored = sorted((server.data_dir / "inputs").glob("*/first_frame.png"), key=lambda p: p.stat().st_mtime)
    assert stored and stored[-1].stat().st_size < 20 * 1024 * 1024
    with Image.open(stored[-1]) as kept:  # scaled down to what any profile can use, aspect kept
        assert kept.size == (2560, 1707)


def test_an_idempotency_key_does_not_skip_the_cheap_checks(server: Server) -> None:
    """A key that cannot pay gets its 406 before any image work, Idempotency-Key or not; a
    burst of such requests leaves other keys' polls alone (before: 2.7-13 s each, and polls
    stalled for seconds)."""
    key = server.key(10)
    h = {"x-api-key": key}
    rid = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
    body = {"image": _huge_jpeg_b64(), "mode": "std"}
    poor = server.key(0)

    def refusal(headers: dict[str, str]) -> float:
        started = time.monotonic()
        answer = httpx.post(server.url + "/v2/kling-2.1", json=body, timeout=60,
                            headers={"x-api-key": poor, **headers})
        assert answer.status_code == 406, answer.text
        return time.monotonic() - started

    plain = min(refusal({}) for _ in range(2))  # sending and parsing the body, no image work
    took = refusal({"Idempotency-Key": "big-1"})
    assert took < 2 * plain + 0.5, (plain, took)
    answers: list[int] = []

    def poor_submit(n: int) -> None:
        answers.append(httpx.post(server.url + "/v2/kling-2.1", json=body, timeout=120,
                                  headers={"x-api-key": poor, "Idempotency-Key": f"big-{n}"}).status_code)

    burst = [threading.Thread(target=poor_submit, args=(n,)) for n in range(8)]
    for thread in burst:
        thread.start()
    slowest = 0.0
    while any(thread.is_alive() for thread in burst):
        started = time.monotonic()
        assert httpx.get(f"{server.url}/v2/requests/{rid}/status", headers=h, timeout=30).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    assert answers == [406] * 8 and slowest < 1.5, (answers, slowest)


def _trickle(port: int, payload: bytes, every_s: float, limit_s: float) -> tuple[bytes, float]:
    """Send ``payload`` a byte at a time; return what the server answered and when it closed."""
    import socket

    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(every_s)
        answer = b""
        for byte in payload:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            except TimeoutError:
                pass
            if time.monotonic() - started > limit_s:
                break
        return answer, time.monotonic() - started


def test_slow_clients_are_cut_off(fresh_dir: Path) -> None:
    with running(fresh_dir, "--profile", "tiny", "--header-timeout", "2", "--body-timeout", "3") as server:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
        answer, took = _trickle(server.port, head, 0.5, 15)
        assert answer == b"" and took < 6  # closed at the header deadline, not after 25 s
        key = server.key(10)
        body = b'{"prompt": "a very slow fox", "duration": 5, "generate_audio": false}'
        head = (f"POST /v2/kling-2.6 HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        import socket

        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head)
            started = time.monotonic()
            sock.settimeout(0.5)
            answer = b""
            for byte in body:
                sock.sendall(bytes([byte]))
                try:
                    answer += sock.recv(65536)
                except TimeoutError:
                    continue
                if answer:
                    break
            assert answer.startswith(b"HTTP/1.1 408")  # the JSON body may follow in another packet
            assert time.monotonic() - started < 8
        assert server.balance(key) == 10


def test_start_banner_and_a_line_per_job_in_json(fresh_dir: Path) -> None:
    import json

    with running(fresh_dir, "--profile", "tiny", "--log-format", "json", "--access-log") as server:
        key = server.key(10)
        r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=120)
        assert r.status_code == 200
        assert server.log_path is not None  # the whole log: polls during a slow start push the banner out of log()
        entries = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    banner = next(e for e in entries if e["logger"] == "takeone.serve")
    assert banner["url"] == server.url and banner["profile"] == "tiny"
    assert banner["data_dir"] == str(fresh_dir.resolve()) and "1 local (cpu)" in banner["workers"]
    assert f"{server.url}/metrics" in banner["message"] and f"{server.url}/docs" in banner["message"]
    assert "store SQLite" in banner["message"]
    job = next(e for e in entries if e["logger"] == "takeone.jobs")
    assert (job["job"], job["status"], job["credits"], job["route"]) == (
        r.headers["x-request-id"], "COMPLETED", 0.438, "kling-2.6")
    assert any(e["logger"] == "uvicorn.access" for e in entries)  # --access-log: one format for every line
