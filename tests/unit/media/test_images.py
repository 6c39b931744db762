"""Tests for takeone.media.images and takeone.media.netguard, with real local servers."""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import random
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image, ImageCms

from takeone.core.errors import ImageError, InvalidRequest
from takeone.media import images, netguard
from takeone.media.images import FetchPolicy, decode_image, load_image, save_png

T = TypeVar("T")

pytestmark = pytest.mark.timeout(30)

LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))
STRICT = FetchPolicy()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def load(value: str, policy: FetchPolicy = LOCAL) -> Image.Image:
    return run(load_image(value, "image", policy))


def refusal(value: str, policy: FetchPolicy = LOCAL) -> ImageError:
    with pytest.raises(ImageError) as caught:
        load(value, policy)
    error = caught.value
    assert error.field == "image"
    assert str(error).startswith("image: ")
    return error


# --- local servers -------------------------------------------------------------------------
# Each server runs http.server in a thread on a free port of 127.0.0.1, answers from a table of
# routes, and records every request it receives (path, headers, TLS server name), so a test can
# prove that a refused fetch never reached it.

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    """A running server; add routes with :meth:`route` or :meth:`handle`."""

    scheme: str
    port: int
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route(
        self,
        path: str,
        body: bytes = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve a fixed answer at ``path``; returns the URL on 127.0.0.1."""

        def answer(request: BaseHTTPRequestHandler) -> None:
            request.send_response(status)
            for name, content in (headers or {}).items():
                request.send_header(name, content)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        self.routes[path] = answer
        return self.url(path)

    def handle(self, path: str, handler: Handler) -> str:
        """Serve ``path`` with custom code (slow or endless answers)."""
        self.routes[path] = handler
        return self.url(path)


def _handler_class(server: Server) -> type[BaseHTTPRequestHandler]:
    class RouteHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches to
            server.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}))
            answer = server.routes.get(self.path.split("?")[0])
            try:
                if answer is None:
                    self.send_error(404)
                else:
                    answer(self)
            except (ConnectionError, ssl.SSLError):
                pass  # the client gave up on purpose (size cap, timeout)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return RouteHandler


@dataclass
class _Running:
    server: Server
    httpd: ThreadingHTTPServer
    thread: threading.Thread


def _start(scheme: str, context: ssl.SSLContext | None = None) -> _Running:
    server = Server(scheme=scheme, port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(server))
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return _Running(server, httpd, thread)


def _stop(running: _Running) -> None:
    running.server.release.set()  # lets slow handlers finish
    running.httpd.shutdown()
    running.httpd.server_close()
    running.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    """An HTTP server on 127.0.0.1."""
    running = _start("http")
    yield running.server
    _stop(running)


@pytest.fixture
def other_server() -> Iterator[Server]:
    """A second HTTP server, for redirects and for proving a fetch never arrived."""
    running = _start("http")
    yield running.server
    _stop(running)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path, name: str) -> Certificate:
    """A self-signed certificate for DNS name ``name`` (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Certificate(cert, key)


@pytest.fixture
def tls_server_factory() -> Iterator[Callable[[Certificate], Server]]:
    """Start HTTPS servers presenting a given certificate; records the SNI name they saw."""
    started: list[_Running] = []

    def start(certificate: Certificate) -> Server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        holder: list[Server] = []

        def remember_name(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            holder[0].server_names.append(name)

        context.sni_callback = remember_name
        running = _start("https", context)
        holder.append(running.server)
        started.append(running)
        return running.server

    yield start
    for running in started:
        _stop(running)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- image builders ------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    return encode(Image.new("RGB", size, color))


def noise_png(size: tuple[int, int] = (64, 64)) -> bytes:
    raw = bytes((x * 7 + x // 3) % 256 for x in range(size[0] * size[1] * 3))
    return encode(Image.frombytes("RGB", size, raw), compress_level=0)


def rotated_jpeg() -> bytes:
    """40x20 stored, left half red and right half blue, EXIF orientation 6 (rotate 90 CW)."""
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def near(actual: Any, expected: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(int(a) - b) <= tolerance for a, b in zip(actual, expected, strict=True))


# --- fake resolver -------------------------------------------------------------------------


@dataclass
class FakeDns:
    """Answers chosen names from a table; everything else goes to the real resolver."""

    table: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in fake.table:
            fake.lookups.append(name)
            answers: list[tuple[Any, ...]] = []
            for address in fake.table[name]:
                if ipaddress.ip_address(address).version == 4:
                    answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
                else:
                    answers.append(
                        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
                    )
            return answers
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Fails any HTTP request; the list stays empty when nothing was attempted."""
    sent: list[httpx.Request] = []

    async def send(self: httpx.AsyncClient, request: httpx.Request, **_: Any) -> httpx.Response:
        sent.append(request)
        raise AssertionError(f"a request was sent to {request.url}")

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return sent


# --- fetching: successes ---------------------------------------------------------------------


def test_fetches_png_over_http(server: Server) -> None:
    url = server.route("/a.png", png((32, 24)), headers={"Content-Type": "image/png"})
    image = load(url)
    assert image.mode == "RGB"
    assert image.size == (32, 24)
    assert near(image.getpixel((5, 5)), (10, 200, 30))
    assert server.hits[0].headers["host"] == f"127.0.0.1:{server.port}"


def test_fetched_jpeg_is_turned_upright_by_exif(server: Server) -> None:
    image = load(server.route("/r.jpg", rotated_jpeg()))
    assert image.size == (20, 40)
    assert near(image.getpixel((10, 5)), (255, 0, 0), 40)  # stored left is now the top
    assert near(image.getpixel((10, 35)), (0, 0, 255), 40)


def test_follows_relative_and_absolute_redirects(server: Server, other_server: Server) -> None:
    other_server.route("/final.png", png())
    server.route("/hop2", status=302, headers={"Location": other_server.url("/final.png")})
    url = server.route("/hop1", status=301, headers={"Location": "/hop2"})
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_redirects=2)
    assert load(url, policy).size == (32, 24)
    assert [hit.path for hit in server.hits] == ["/hop1", "/hop2"]
    assert [hit.path for hit in other_server.hits] == ["/final.png"]


def test_allowed_host_matches_on_name_case_and_trailing_dot(server: Server) -> None:
    server.route("/a.png", png())
    policy = FetchPolicy(allow_hosts=frozenset({"LocalHost"}))
    assert load(server.url("/a.png", host="localhost."), policy).size == (32, 24)


def test_name_is_resolved_once_and_the_checked_address_is_used(
    server: Server, dns: FakeDns
) -> None:
    dns.table["images.test"] = ["127.0.0.1"]
    server.route("/a.png", png())
    policy = FetchPolicy(allow_hosts=frozenset({"images.test"}))
    assert load(server.url("/a.png", host="images.test"), policy).size == (32, 24)
    # "images.test" exists only in the fake table: the connection went to the pinned address.
    assert dns.lookups == ["images.test"]
    assert server.hits[0].headers["host"] == f"images.test:{server.port}"


def test_tries_the_next_checked_address_when_one_does_not_connect(
    server: Server, dns: FakeDns
) -> None:
    # ::1 may be missing in the sandbox, and nothing listens on IPv6 here either way.
    dns.table["dual.test"] = ["::1", "127.0.0.1"]
    server.route("/a.png", png())
    policy = FetchPolicy(allow_hosts=frozenset({"dual.test"}))
    assert load(server.url("/a.png", host="dual.test"), policy).size == (32, 24)


def test_https_sends_sni_and_verifies_the_original_name(
    tmp_path: Path, dns: FakeDns, tls_server_factory: Callable[[Certificate], Server]
) -> None:
    certificate = make_certificate(tmp_path, "images.test")
    server = tls_server_factory(certificate)
    server.route("/a.png", png())
    dns.table["images.test"] = ["127.0.0.1"]
    trust = ssl.create_default_context(cafile=str(certificate.cert))
    policy = FetchPolicy(allow_hosts=frozenset({"images.test"}), ssl_context=trust)
    assert load(server.url("/a.png", host="images.test"), policy).size == (32, 24)
    assert server.server_names == ["images.test"]
    assert server.hits[0].headers["host"] == f"images.test:{server.port}"


def test_https_refuses_a_certificate_for_another_name(
    tmp_path: Path, dns: FakeDns, tls_server_factory: Callable[[Certificate], Server]
) -> None:
    certificate = make_certificate(tmp_path, "other.test")
    server = tls_server_factory(certificate)
    server.route("/a.png", png())
    dns.table["images.test"] = ["127.0.0.1"]
    trust = ssl.create_default_context(cafile=str(certificate.cert))
    policy = FetchPolicy(allow_hosts=frozenset({"images.test"}), ssl_context=trust)
    error = refusal(server.url("/a.png", host="images.test"), policy)
    assert "certificate" in str(error)
    assert server.hits == []


# --- fetching: refusals ----------------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.0.1.",
    "2130706433",
    "0x7f000001",
    "0x7F.1",
    "0177.0.0.1",
    "017700000001",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[::127.0.0.1]",
    "0.0.0.0",
    "0",
    "[::]",
    "localhost",
    "LOCALHOST.",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_in_every_spelling_never_reaches_the_server(
    host: str, other_server: Server
) -> None:
    other_server.route("/a.png", png())
    refusal(other_server.url("/a.png", host=host), STRICT)
    assert other_server.hits == []


FORBIDDEN_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://169.254.169.254/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://2852039166/", "metadata"),  # 169.254.169.254 as one number
    ("http://100.100.100.200/", "metadata"),
    ("http://192.0.0.192/", "metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://198.18.0.1/", "reserved"),
    ("http://[2001:db8::1]/", "reserved"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://127.0.0.1:8080/", "loopback"),
    ("https://[::1]/", "loopback"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN_URLS)
def test_forbidden_addresses_are_refused_without_a_request(
    url: str, reason: str, no_requests: list[httpx.Request]
) -> None:
    error = refusal(url, STRICT)
    assert reason in str(error)
    assert no_requests == []


def test_a_name_is_refused_if_any_of_its_addresses_is_forbidden(
    dns: FakeDns, no_requests: list[httpx.Request]
) -> None:
    dns.table["mixed.test"] = ["93.184.216.34", "10.0.0.7"]
    error = refusal("http://mixed.test/a.png", STRICT)
    assert "private" in str(error)
    assert "10.0.0.7" not in str(error)  # internal addresses are not echoed back
    assert no_requests == []


def test_a_public_name_passes_the_check(dns: FakeDns) -> None:
    dns.table["public.test"] = ["93.184.216.34", "2606:2800:220:1::1"]
    target = run(images._check_target(httpx.URL("http://public.test/"), "v", "image", STRICT))
    assert [str(a) for a in target.addresses] == ["93.184.216.34", "2606:2800:220:1::1"]


def test_allow_list_matches_the_name_not_other_spellings(other_server: Server) -> None:
    other_server.route("/a.png", png())
    refusal(other_server.url("/a.png", host="127.1"), LOCAL)
    refusal(other_server.url("/a.png", host="2130706433"), LOCAL)
    assert other_server.hits == []


def test_loopback_names_cover_each_other(other_server: Server) -> None:
    other_server.route("/a.png", png())
    assert load(other_server.url("/a.png", host="localhost"), LOCAL).size == (32, 24)
    by_name = FetchPolicy(allow_hosts=frozenset({"localhost"}))
    assert load(other_server.url("/a.png", host="127.0.0.1"), by_name).size == (32, 24)


def test_a_loopback_refusal_names_fetch_allow(other_server: Server) -> None:
    error = refusal(other_server.url("/a.png", host="localhost"), FetchPolicy())
    assert "loopback" in str(error) and "--fetch-allow localhost" in str(error)


def test_redirect_to_a_forbidden_address_is_refused(server: Server, other_server: Server) -> None:
    other_server.route("/a.png", png())
    url = server.route(
        "/go", status=302, headers={"Location": other_server.url("/a.png", host="127.1")}
    )
    error = refusal(url, LOCAL)
    assert "loopback" in str(error)
    assert other_server.hits == []


def test_redirect_to_metadata_is_refused(server: Server) -> None:
    url = server.route(
        "/go", status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    assert "metadata" in str(refusal(url, LOCAL))


@pytest.mark.parametrize(
    "location", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "http://user:pw@127.0.0.1/"]
)
def test_redirect_to_another_scheme_or_with_credentials_is_refused(
    server: Server, location: str
) -> None:
    refusal(server.route("/go", status=302, headers={"Location": location}), LOCAL)
    assert len(server.hits) == 1


def test_too_many_redirects(server: Server) -> None:
    url = server.route("/loop", status=302, headers={"Location": "/loop"})
    error = refusal(url, FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_redirects=3))
    assert "more than 3 redirects" in str(error)
    assert len(server.hits) == 4


def test_no_redirects_allowed(server: Server) -> None:
    server.route("/a.png", png())
    url = server.route("/go", status=302, headers={"Location": "/a.png"})
    refusal(url, FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_redirects=0))
    assert [hit.path for hit in server.hits] == ["/go"]


@pytest.mark.parametrize("status", [404, 403, 500])
def test_non_2xx_names_the_status(server: Server, status: int) -> None:
    url = server.route("/x", b"<html>nope</html>", status=status)
    assert f"HTTP {status}" in str(refusal(url))


def test_body_declared_larger_than_the_cap_is_refused(server: Server) -> None:
    url = server.route("/big", b"\0" * 70_000)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=64 * 1024)
    assert "larger than 65536 bytes" in str(refusal(url, policy))


def test_undeclared_body_is_cut_off_past_the_cap(server: Server) -> None:
    def endless(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.end_headers()  # no Content-Length: HTTP/1.0 body runs until close
        for _ in range(1024):  # up to 64 MiB, far more than the client reads
            request.wfile.write(b"\0" * 65536)

    url = server.handle("/endless", endless)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=100_000)
    started = time.monotonic()
    assert "larger than 100000 bytes" in str(refusal(url, policy))
    assert time.monotonic() - started < 5


def test_non_image_body_is_refused(server: Server) -> None:
    url = server.route("/t", b"hello, world", headers={"Content-Type": "image/png"})
    assert "is not a PNG" in str(refusal(url))


def test_slow_answer_times_out(server: Server) -> None:
    def stall(request: BaseHTTPRequestHandler) -> None:
        server.release.wait(10)

    url = server.handle("/slow", stall)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), read_timeout=0.2)
    assert "timed out" in str(refusal(url, policy))


def test_dripping_answer_hits_the_total_deadline(server: Server) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.end_headers()
        while not server.release.wait(0.05):
            request.wfile.write(b"\0")
            request.wfile.flush()

    url = server.handle("/drip", drip)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), total_timeout=0.4)
    started = time.monotonic()
    assert "longer than 0.4 s" in str(refusal(url, policy))
    assert time.monotonic() - started < 3


def test_nothing_listening(closed_port: int) -> None:
    assert "could not connect" in str(refusal(f"http://127.0.0.1:{closed_port}/a.png"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftp://example.com/a.png", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://127.0.0.1:70/", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("http://user:pw@example.com/a.png", "user name or password"),
        ("http:///a.png", "no host"),
        ("http://exa mple.com/", ""),
        ("http://example.com:99999/", "port"),
        ("http://no-such-host.invalid/a.png", "does not resolve"),
    ],
)
def test_bad_urls(value: str, reason: str, no_requests: list[httpx.Request]) -> None:
    assert reason in str(refusal(value, STRICT))
    assert no_requests == []


# --- inline data -----------------------------------------------------------------------------


def test_data_uri() -> None:
    assert load(data_uri(png((20, 30)))).size == (20, 30)


def test_data_uri_is_case_insensitive_and_may_carry_parameters() -> None:
    payload = base64.b64encode(png()).decode()
    assert load(f"DATA:Image/PNG;charset=binary;BASE64,{payload}").size == (32, 24)


def test_data_uri_may_be_percent_encoded() -> None:
    payload = base64.b64encode(noise_png((16, 16))).decode()
    assert "+" in payload or "/" in payload
    encoded = payload.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert load(f"data:image/png;base64,{encoded}").size == (16, 16)


def test_raw_base64_with_or_without_padding_line_breaks_or_url_safe_alphabet() -> None:
    raw = base64.b64encode(rotated_jpeg()).decode()
    assert load(raw).size == (20, 40)
    assert load(raw.rstrip("=")).size == (20, 40)
    assert load("\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))).size == (20, 40)
    assert load(base64.urlsafe_b64encode(rotated_jpeg()).decode()).size == (20, 40)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must be an http(s) URL"),
        ("   ", "must be an http(s) URL"),
        ("not an image!", "is not an http(s) URL, a data:image URI or valid base64"),
        ("example.com/a.png", "is not an http(s) URL"),
        ("abcd", "is not a PNG"),
        (base64.b64encode(b"hello world, not a picture").decode(), "is not a PNG"),
        ("data:text/plain;base64,aGVsbG8=", "image/* media type"),
        ("data:image/png,%89PNG", "must be base64-encoded"),
        ("data:image/png;base64", "no ','"),
        ("data:image/png;base64,@@@@", "valid base64"),
        ("data:image/png;base64,", "valid base64"),
    ],
)
def test_garbage_is_refused(value: str, reason: str) -> None:
    assert reason in str(refusal(value, STRICT))


def test_base64_length_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = base64.b64decode

    def spy(data: Any, *args: Any, **kwargs: Any) -> bytes:
        decoded.append("x")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(base64, "b64decode", spy)
    policy = FetchPolicy(max_bytes=3000)
    error = refusal(data_uri(noise_png((64, 64))), policy)
    assert "larger than 3000 bytes" in str(error)
    assert decoded == []
    assert load(data_uri(png((16, 16))), policy).size == (16, 16)


def test_error_message_names_field_and_value() -> None:
    with pytest.raises(InvalidRequest) as caught:
        run(load_image("ftp://x/y.png", "image_tail", STRICT))
    assert str(caught.value).startswith("image_tail: ")
    assert "'ftp://x/y.png'" in str(caught.value)


# --- decoding --------------------------------------------------------------------------------


def decode(data: bytes, policy: FetchPolicy = STRICT) -> Image.Image:
    return decode_image(data, "image", "<value>", policy)


def decode_refusal(data: bytes, policy: FetchPolicy = STRICT) -> str:
    with pytest.raises(ImageError) as caught:
        decode(data, policy)
    return str(caught.value)


def test_truncated_png_is_refused() -> None:
    data = noise_png()
    assert "truncated or corrupt" in decode_refusal(data[: len(data) // 2])


def test_truncated_jpeg_is_refused() -> None:
    noise = random.Random(0).randbytes(128 * 128 * 3)
    data = encode(Image.frombytes("RGB", (128, 128), noise), "JPEG", quality=95)
    assert len(data) > 15_000  # scan data dominates, so half the file is mid-scan
    assert "truncated or corrupt" in decode_refusal(data[: len(data) // 2])


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))
    assert image.mode == "RGB"
    assert near(image.getpixel((16, 16)), (255, 0, 0), 8)


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    row = [0x1000] * 16 + [0x8000] * 16  # left half 1/16, right half 1/2 of full scale
    deep = Image.frombytes("I;16", (32, 32), struct.pack("<1024H", *(row * 32)))
    data = encode(deep)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = decode(data)
    assert image.mode == "RGB"
    assert image.getpixel((24, 5)) == (128, 128, 128)
    assert image.getpixel((4, 5)) == (16, 16, 16)


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 0, 128), (16, 0, 32, 32))  # half-transparent black
    image = decode(encode(rgba))
    assert image.mode == "RGB"
    assert image.getpixel((4, 4)) == (255, 255, 255)
    assert near(image.getpixel((20, 4)), (127, 127, 127), 1)


def test_grey_with_alpha_is_composited_on_white() -> None:
    image = decode(encode(Image.new("LA", (32, 32), (0, 0))))
    assert image.getpixel((4, 4)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white() -> None:
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    palette.paste(0, (0, 0, 16, 32))
    image = decode(encode(palette, transparency=1))
    assert image.getpixel((4, 4)) == (0, 0, 255)
    assert image.getpixel((20, 4)) == (255, 255, 255)


def test_palette_and_bilevel_become_rgb() -> None:
    palette = Image.new("RGB", (32, 32), (200, 20, 20)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert near(decode(encode(palette)).getpixel((3, 3)), (200, 20, 20), 8)
    assert decode(encode(Image.new("1", (32, 32), 1))).getpixel((3, 3)) == (255, 255, 255)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    image = decode(data)
    assert image.mode == "RGB"
    assert near(image.getpixel((16, 16)), (255, 0, 0), 4)


def test_webp_and_bmp_are_accepted() -> None:
    assert decode(encode(Image.new("RGB", (32, 32)), "WEBP")).size == (32, 32)
    assert decode(encode(Image.new("RGB", (32, 32)), "BMP")).size == (32, 32)


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO"])
def test_other_formats_are_refused(fmt: str) -> None:
    assert "is not a PNG, JPEG, WEBP, GIF, BMP image" in decode_refusal(
        encode(Image.new("RGB", (32, 32)), fmt)
    )


def test_icc_profile_is_applied_and_a_broken_one_ignored() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = Image.new("RGB", (32, 32), (30, 120, 220))
    tagged = decode(encode(source, icc_profile=srgb))
    assert near(tagged.getpixel((3, 3)), (30, 120, 220), 2)
    assert "icc_profile" not in tagged.info
    translucent = decode(encode(Image.new("RGBA", (32, 32), (30, 120, 220, 128)), icc_profile=srgb))
    assert near(translucent.getpixel((3, 3)), (142, 187, 237), 2)
    broken = decode(encode(source, icc_profile=b"not a profile"))
    assert broken.getpixel((3, 3)) == (30, 120, 220)


def test_decompression_bomb_beyond_pillows_own_limit() -> None:
    bomb = png_header_only(100_000, 100_000)
    assert len(bomb) < 200
    started = time.monotonic()
    assert "too many pixels" in decode_refusal(bomb)
    assert time.monotonic() - started < 1


def test_decompression_bomb_checked_from_header_before_decoding() -> None:
    bomb = png_header_only(8000, 8000)  # 64 Mpx: under Pillow's limit, over ours
    started = time.monotonic()
    assert "8000x8000 = 64000000 pixels; the limit is 50000000" in decode_refusal(bomb)
    assert time.monotonic() - started < 1


def test_pixel_limit_is_configurable() -> None:
    assert "the limit is 1000" in decode_refusal(png((40, 40)), FetchPolicy(max_pixels=1000))


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ((8, 8), "each side must be at least 16 px"),
        ((15, 40), "each side must be at least 16 px"),
        ((16, 129), "aspect ratio must be within 1:8 and 8:1"),
        ((1000, 100), "aspect ratio must be within 1:8 and 8:1"),
    ],
)
def test_too_small_or_too_thin(size: tuple[int, int], reason: str) -> None:
    assert reason in decode_refusal(png(size))


@pytest.mark.parametrize("size", [(16, 16), (16, 128), (128, 16)])
def test_limits_are_inclusive(size: tuple[int, int]) -> None:
    assert decode(png(size)).size == size


# --- netguard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("8.8.8.8.", "8.8.8.8"),
        ("cafe.be", None),
        ("a1.de", None),
        ("example.com", None),
    ],
)
def test_parse_ip_literal(host: str, address: str | None) -> None:
    parsed = netguard.parse_ip_literal(host)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert netguard.forbidden_reason(ipaddress.ip_address(address)) is None


def test_literal_needs_no_lookup(dns: FakeDns) -> None:
    assert run(netguard.resolve("0x7f.1", 80)) == (ipaddress.ip_address("127.0.0.1"),)
    assert dns.lookups == []


# --- policy and saving -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"max_bytes": 0},
        {"connect_timeout": -1.0},
        {"max_redirects": -1},
        {"max_aspect_ratio": 0.5},
        {"min_side": 0},
    ],
)
def test_policy_rejects_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FetchPolicy(**options)


def test_policy_allows_by_normalized_name() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"LocalHost", "[::1]", "images.test."}))
    assert policy.allows("localhost")
    assert policy.allows("::1")
    assert policy.allows("IMAGES.TEST")
    assert policy.allows("127.0.0.1")  # the loopback names cover each other
    assert not policy.allows("127.1") and not FetchPolicy(allow_hosts=frozenset({"images.test"})).allows("localhost")


def test_save_png_round_trips_and_leaves_no_temporary(tmp_path: Path) -> None:
    image = decode(rotated_jpeg())
    target = tmp_path / "frame.png"
    save_png(image, target)
    save_png(image, target)  # replacing an existing file works too
    with Image.open(target) as saved:
        assert saved.format == "PNG"
        assert saved.size == (20, 40)
        assert saved.convert("RGB").tobytes() == image.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == ["frame.png"]


def test_save_png_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        save_png(Image.new("CMYK", (16, 16)), target)  # PNG cannot hold CMYK
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["frame.png"]


def test_concurrent_loads_do_not_block_each_other(server: Server) -> None:
    def stall(request: BaseHTTPRequestHandler) -> None:
        server.release.wait(10)

    slow = server.handle("/slow", stall)
    fast = server.route("/a.png", png())
    slow_policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), read_timeout=1.0)

    async def both() -> tuple[BaseException | Image.Image, ...]:
        return tuple(
            await asyncio.gather(
                load_image(slow, "image", slow_policy),
                load_image(fast, "image", LOCAL),
                return_exceptions=True,
            )
        )

    started = time.monotonic()
    slow_result, fast_result = run(both())
    assert isinstance(slow_result, ImageError)
    assert isinstance(fast_result, Image.Image)
    assert time.monotonic() - started < 3


def test_camera_mpo_gives_its_first_picture() -> None:
    pictures = [Image.new("RGB", (32, 32), color) for color in ((0, 255, 0), (255, 0, 255))]
    data = encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert near(decode(data).getpixel((16, 16)), (0, 255, 0), 8)


def test_every_accepted_format_has_an_opener() -> None:
    Image.init()
    assert set(images.ACCEPTED_FORMATS) <= set(Image.OPEN)
