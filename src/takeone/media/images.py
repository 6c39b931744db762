"""Turn a client's image field into a plain RGB picture, refusing anything unsafe.

An image field (``image``, ``image_tail``, ``image_url``) holds one of:

* an ``http://`` or ``https://`` URL, fetched by the server;
* a ``data:image/<type>;base64,<payload>`` URI;
* raw base64 with no prefix (some hosted video APIs accept that);

or an :class:`ImageFile`: a picture already on this machine's disk (an uploaded form part),
decoded from the file, never read whole into memory.

Promises of :func:`load_image`:

* Every failure is an :class:`~takeone.core.errors.ImageError` (HTTP 400) whose message names the
  field and the value; nothing else escapes for bad input.
* A URL is fetched only from public addresses. The host is resolved once, *all* its addresses
  are checked, and the connection goes to a checked address (the URL is rewritten to the IP,
  the original ``Host`` header and TLS server name are kept), so a second DNS answer cannot
  redirect the fetch. Loopback, private, link-local, CGNAT, multicast, reserved, unspecified
  and cloud-metadata addresses are refused in every spelling (``127.1``, ``2130706433``,
  ``[::ffff:127.0.0.1]``, ...) before any connection is made; see
  :mod:`takeone.media.netguard`. Redirects are followed by hand, at most
  ``FetchPolicy.max_redirects`` of them, and every hop is checked the same way.
* Hosts named in ``FetchPolicy.allow_hosts`` skip the address check (for development). They
  match on the URL's host name only, compared case-insensitively without port, brackets or a
  trailing dot: ``"localhost"`` allows ``http://LOCALHOST:8080/x``; ``"127.0.0.1"`` does not
  allow ``http://127.1/`` (a different spelling is a different name). The usual loopback names
  stand for each other (:data:`LOOPBACK_NAMES`: ``localhost``, ``127.0.0.1``, ``::1``), so
  allowing one allows all three. They are still resolved once and pinned. A refused loopback
  or private address names ``--fetch-allow``, the server option that exempts a host.
* No more than ``FetchPolicy.max_bytes`` are read or decoded from base64; connect, per-read
  and whole-fetch time limits apply. Proxy environment variables are ignored, because a proxy
  would make the pinned address meaningless.
* Decoding accepts PNG, JPEG (camera MPO included), WebP, GIF and BMP only (no TIFF, EPS,
  PDF...: a smaller attack surface). The pixel count is checked from the header *before*
  decoding, the whole image is then decoded (a truncated file is refused), the EXIF
  orientation is applied, an animated image gives its first frame, and the result is 8-bit
  ``RGB``: CMYK and ICC-tagged images are converted to sRGB, 16-bit greyscale is scaled down,
  and transparency is composited onto white. Images whose smaller side is below
  ``min_side`` or whose aspect ratio is more extreme than ``1:max_aspect_ratio`` are refused.

:func:`save_png` writes an image atomically (temporary file in the same folder, then rename).

Pillow, httpx and the standard library only: this runs in the API process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import io
import math
import os
import re
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
from PIL import Image, ImageCms, ImageOps

from takeone.core.errors import ImageError
from takeone.media import netguard

__all__ = ["FetchPolicy", "ImageFile", "decode_image", "load_image", "save_png"]

MiB: Final = 1024 * 1024
_T = TypeVar("_T")

# Formats Pillow may try. Pillow would otherwise try every plugin it has, including EPS (which
# runs Ghostscript) and others nobody sends as a video frame. Multi-picture JPEGs from cameras
# (MPO) come in through the JPEG plugin; every name here must be a registered opener.
ACCEPTED_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Standard and URL-safe alphabets, with or without padding.
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_WHITE: Final = (255, 255, 255, 255)
_USER_AGENT: Final = "takeone-image-fetch/1"
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
"""Names of this machine that an allow-list entry of any one of them also covers."""


@dataclass(frozen=True)
class ImageFile:
    """An image file on this machine (an upload): errors show ``label`` (the client's file
    name), never ``path``."""

    path: Path
    label: str
    size: int


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for :func:`load_image`; the defaults suit a public server.

    Attributes:
        allow_hosts: host names exempt from the address check (development only); matched on
            the URL's host name, case-insensitively, without port, brackets or trailing dot.
        connect_timeout: seconds to open a connection (TLS included).
        read_timeout: seconds to wait for each piece of the answer.
        total_timeout: seconds for the whole fetch, redirects included; stops a server that
            drips one byte per ``read_timeout``.
        max_bytes: largest body fetched or base64 payload decoded.
        max_redirects: redirects followed before giving up.
        max_pixels: largest width x height decoded; checked from the header. Pillow refuses
            above ``2 * Image.MAX_IMAGE_PIXELS`` on its own, whatever this says.
        min_side: smallest allowed width or height, in pixels.
        max_aspect_ratio: largest allowed long side / short side.
        ssl_context: certificates trusted for https; ``None`` uses httpx's default (certifi).
    """

    allow_hosts: frozenset[str] = frozenset()
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 20 * MiB
    max_redirects: int = 3
    max_pixels: int = 50_000_000
    min_side: int = 16
    max_aspect_ratio: float = 8.0
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "total_timeout": self.total_timeout,
            "max_bytes": self.max_bytes,
            "max_pixels": self.max_pixels,
            "min_side": self.min_side,
        }
        for name, number in positive.items():
            if number <= 0:
                raise ValueError(f"FetchPolicy.{name} must be positive, got {number!r}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchPolicy.max_redirects must be >= 0, got {self.max_redirects}")
        if self.max_aspect_ratio < 1:
            raise ValueError(
                f"FetchPolicy.max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}"
            )

    def allows(self, host: str) -> bool:
        """Whether ``host`` is exempt from the address check (``127.0.0.1`` covers ``localhost``).

        Example::

            FetchPolicy(allow_hosts=frozenset({"127.0.0.1"})).allows("LOCALHOST")  # True
        """
        wanted = netguard.normalize_host(host)
        entries = {netguard.normalize_host(entry) for entry in self.allow_hosts}
        return wanted in entries or (wanted in LOOPBACK_NAMES and not entries.isdisjoint(LOOPBACK_NAMES))


async def load_image(value: str | ImageFile, field: str, policy: FetchPolicy,
                     executor: Executor | None = None) -> Image.Image:
    """Fetch or decode the image in ``value`` and return it as an upright 8-bit RGB image.
    The CPU work runs on ``executor`` (None: the event loop's default thread pool).

    Raises:
        ImageError: the value is not a usable image, for any reason (message names ``field``).
    """
    if isinstance(value, ImageFile):
        if value.size > policy.max_bytes:
            raise ImageError(field, value.label, _too_large(policy))
        return await _off_loop(executor, decode_image, value.path, field, value.label, policy)
    if not isinstance(value, str) or not value.strip():
        raise ImageError(field, value, "must be an http(s) URL, a data:image URI or base64")
    data = await _read_bytes(value.strip(), field, policy, executor)
    return await _off_loop(executor, decode_image, data, field, value, policy)


async def _off_loop(executor: Executor | None, fn: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))


async def _read_bytes(value: str, field: str, policy: FetchPolicy, executor: Executor | None) -> bytes:
    scheme = _SCHEME.match(value)
    if scheme is None:
        # Base64 never contains ':', so anything without a scheme is a base64 candidate.
        return await _off_loop(executor, _decode_base64, value, field, value, policy)
    name = scheme.group(1).lower()
    if name in ("http", "https"):
        return await _fetch(value, field, policy)
    if name == "data":
        return await _off_loop(executor, _decode_data_uri, value, field, policy)
    raise ImageError(field, value, f"URL scheme {name!r} is not allowed; use http or https")


# --- inline data ---------------------------------------------------------------------------


def _decode_data_uri(value: str, field: str, policy: FetchPolicy) -> bytes:
    header, comma, payload = value[len("data:") :].partition(",")
    if not comma:
        raise ImageError(field, value, "data URI has no ',' before its payload")
    media_type, *params = (part.strip().lower() for part in header.split(";"))
    if not media_type.startswith("image/"):
        raise ImageError(field, value, "data URI must have an image/* media type")
    if "base64" not in params:
        raise ImageError(field, value, "data URI must be base64-encoded (';base64,')")
    if "%" in payload:
        # A URI may percent-encode '+', '/' and '='.
        payload = urllib.parse.unquote(payload)
    return _decode_base64(payload, field, value, policy)


def _decode_base64(payload: str, field: str, value: str, policy: FetchPolicy) -> bytes:
    limit = 4 * math.ceil(policy.max_bytes / 3)
    # Cheap refusal before copying; the factor 2 leaves room for line breaks.
    if len(payload) > 2 * limit:
        raise ImageError(field, value, _too_large(policy))
    compact = "".join(payload.split())  # MIME encoders break lines every 76 characters
    if len(compact) > limit:
        raise ImageError(field, value, _too_large(policy))
    if not compact or not _BASE64.fullmatch(compact):
        raise ImageError(field, value, "is not an http(s) URL, a data:image URI or valid base64")
    standard = compact.rstrip("=").translate(str.maketrans("-_", "+/"))
    standard += "=" * (-len(standard) % 4)
    try:
        return base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(field, value, "is not valid base64") from exc


def _too_large(policy: FetchPolicy) -> str:
    return f"image is larger than {_show_size(policy.max_bytes)}"


def _show_size(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


# --- fetching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One hop of a fetch: the URL as given and the checked addresses to connect to."""

    url: httpx.URL
    addresses: tuple[netguard.IPAddress, ...]


async def _fetch(value: str, field: str, policy: FetchPolicy) -> bytes:
    try:
        async with asyncio.timeout(policy.total_timeout):
            return await _follow(value, field, policy)
    except TimeoutError as exc:
        raise ImageError(
            field, value, f"fetch took longer than {policy.total_timeout:g} s"
        ) from exc


async def _follow(value: str, field: str, policy: FetchPolicy) -> bytes:
    url = _parse_url(value, value, field)
    for _hop in range(policy.max_redirects + 1):
        target = await _check_target(url, value, field, policy)
        outcome = await _get(target, value, field, policy)
        if isinstance(outcome, bytes):
            return outcome
        url = outcome
    raise ImageError(field, value, f"more than {policy.max_redirects} redirects")


def _parse_url(text: str, value: str, field: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ImageError(field, value, f"URL {text!r} is malformed") from exc
    if url.scheme not in ("http", "https"):
        raise ImageError(field, value, f"URL scheme {url.scheme!r} is not allowed")
    if not url.host:
        raise ImageError(field, value, f"URL {text!r} has no host")
    if url.userinfo:
        raise ImageError(field, value, "URLs with a user name or password are not accepted")
    if url.port is not None and not 0 < url.port < 65536:
        raise ImageError(field, value, f"URL port {url.port} is out of range")
    return url


async def _check_target(url: httpx.URL, value: str, field: str, policy: FetchPolicy) -> _Target:
    host = _ascii_host(url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await netguard.resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise ImageError(field, value, f"host {host!r} does not resolve") from exc
    if not policy.allows(host):
        for address in addresses:
            reason = netguard.forbidden_reason(address)
            if reason is not None:
                # The address itself is not echoed: it would let a client map internal DNS.
                raise ImageError(field, value, refusal(host, reason))
    return _Target(url=url, addresses=addresses)


def refusal(host: str, reason: str) -> str:
    """Why a fetch from ``host`` is refused; for a loopback or private address, how a
    development server allows it."""
    message = f"host {host!r} is refused: it is a {reason} address"
    if reason.startswith(("loopback", "private")):
        message += f" (to fetch from it on a development server, start it with --fetch-allow {host})"
    return message


def _ascii_host(url: httpx.URL) -> str:
    # raw_host is the IDNA (punycode) form a resolver and a Host header need.
    return url.raw_host.decode("ascii")


async def _get(target: _Target, value: str, field: str, policy: FetchPolicy) -> bytes | httpx.URL:
    """Fetch one hop: the body for a 2xx answer, the next URL for a redirect."""
    last_error: httpx.TransportError | None = None
    for address in target.addresses:
        # A fresh client per hop and address: a pooled connection made for one host name must
        # not be reused for another name that happens to share its address.
        async with _client(policy) as client:
            try:
                response = await client.send(_pinned_request(target.url, address), stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc
                continue
            except httpx.HTTPError as exc:
                raise ImageError(field, value, _transport_reason(exc)) from exc
            try:
                return await _handle(response, target.url, value, field, policy)
            finally:
                await response.aclose()
    assert last_error is not None  # resolve() never returns an empty tuple
    raise ImageError(field, value, _transport_reason(last_error)) from last_error


def _client(policy: FetchPolicy) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.connect_timeout,
    )
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        verify=policy.ssl_context or _default_ssl_context(),
    )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Built on first use, not at import (it reads the certificate bundle); shared afterwards.
    return httpx.create_ssl_context()


def _pinned_request(url: httpx.URL, address: netguard.IPAddress) -> httpx.Request:
    host = _ascii_host(url)
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": _USER_AGENT,
        "Accept": "image/*",
        # A compressed body would be inflated past max_bytes inside one read.
        "Accept-Encoding": "identity",
    }
    pinned = url.copy_with(host=str(address), fragment=None)
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return httpx.Request("GET", pinned, headers=headers, extensions=extensions)


def _transport_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "fetch timed out"
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return "could not fetch: the TLS certificate does not verify"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the host"
    return f"could not fetch: {type(exc).__name__}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _depth in range(8):  # the chain is short; the bound guards against cycles
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _handle(
    response: httpx.Response, url: httpx.URL, value: str, field: str, policy: FetchPolicy
) -> bytes | httpx.URL:
    if response.status_code in _REDIRECTS and "location" in response.headers:
        location = response.headers["location"]
        try:
            joined = url.join(location)
        except httpx.InvalidURL as exc:
            raise ImageError(field, value, f"redirect to a malformed URL {location!r}") from exc
        return _parse_url(str(joined.copy_with(fragment=None)), value, field)
    if not response.is_success:
        raise ImageError(
            field,
            value,
            f"fetch answered HTTP {response.status_code} "
            f"{httpx.codes.get_reason_phrase(response.status_code)}".rstrip(),
        )
    return await _read_capped(response, value, field, policy)


async def _read_capped(
    response: httpx.Response, value: str, field: str, policy: FetchPolicy
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise ImageError(field, value, _too_large(policy))
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > policy.max_bytes:
                raise ImageError(field, value, _too_large(policy))
    except httpx.HTTPError as exc:
        raise ImageError(field, value, _transport_reason(exc)) from exc
    return bytes(body)


# --- decoding ------------------------------------------------------------------------------


def decode_image(data: bytes | Path, field: str, value: str, policy: FetchPolicy) -> Image.Image:
    """Decode ``data`` (the bytes, or a file holding them) into an upright 8-bit RGB image
    under ``policy``'s limits.

    ``value`` is what the client sent; it only appears in error messages. Blocking (CPU-bound):
    call it from a worker thread inside an event loop.

    Raises:
        ImageError: not an accepted format, too many pixels, truncated, too small, too thin.
    """
    with _open(data, field, value) as image:
        _check_geometry(image.size, field, value, policy)
        _load(image, field, value)
        return _to_rgb(_upright(image, field, value), field, value)


def _open(data: bytes | Path, field: str, value: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data) if isinstance(data, bytes) else data, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageError(field, value, "image has too many pixels") from exc
    except Exception as exc:
        # Pillow signals undecodable input with many exception types (OSError, SyntaxError,
        # ValueError, struct.error, ...); all of them mean the same thing to the client.
        raise ImageError(field, value, f"is not a {', '.join(ACCEPTED_FORMATS)} image") from exc


def _check_geometry(size: tuple[int, int], field: str, value: str, policy: FetchPolicy) -> None:
    width, height = size
    if width * height > policy.max_pixels:
        raise ImageError(
            field,
            value,
            f"image is {width}x{height} = {width * height} pixels; "
            f"the limit is {policy.max_pixels}",
        )
    short, long = sorted((width, height))
    if short < policy.min_side:
        raise ImageError(
            field,
            value,
            f"image is {width}x{height}; each side must be at least {policy.min_side} px",
        )
    if long / short > policy.max_aspect_ratio:
        raise ImageError(
            field,
            value,
            f"image is {width}x{height}; its aspect ratio must be within "
            f"1:{policy.max_aspect_ratio:g} and {policy.max_aspect_ratio:g}:1",
        )


def _load(image: Image.Image, field: str, value: str) -> None:
    # load() decodes the current frame, which right after open() is the first one.
    try:
        image.load()
    except Exception as exc:  # see _open: every decoder failure means a broken file
        raise ImageError(field, value, "image data is truncated or corrupt") from exc


def _upright(image: Image.Image, field: str, value: str) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # malformed EXIF
        raise ImageError(field, value, "image has unreadable EXIF data") from exc
    return upright


def _to_rgb(image: Image.Image, field: str, value: str) -> Image.Image:
    try:
        if image.mode.startswith("I") or image.mode == "F":
            image = _deep_gray_to_l(image)
        image = _to_srgb(image)
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            image = _flatten_on_white(image)
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(field, value, f"image colour mode {image.mode} is unsupported") from exc
    # Orientation, profile and transparency are applied; stale metadata would mislead.
    rgb.info = {}
    return rgb


def _deep_gray_to_l(image: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them.
    if image.mode == "F":
        return image.convert("L")
    sixteen_bit = image.mode.startswith("I;16")
    widened = image.convert("I")
    if not sixteen_bit:
        _low, high = widened.getextrema()
        sixteen_bit = isinstance(high, (int, float)) and high > 255
    if sixteen_bit:
        widened = widened.point(lambda level: level / 256)
    return widened.convert("L")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK print profiles, Display P3 phone photos)."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        target = ImageCms.createProfile("sRGB")
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, target, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or unusual profile is no reason to refuse the picture; fall back to the
        # plain conversion, which is what most viewers show anyway.
        return image
    return converted if converted is not None else image


def _flatten_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba)


# --- saving --------------------------------------------------------------------------------


def save_png(image: Image.Image, path: Path) -> None:
    """Write ``image`` to ``path`` as PNG; readers see the old file or the whole new one.

    The folder must exist. The temporary file lives beside ``path`` (same file system, so the
    rename is atomic) and is removed if writing fails. The file is created with mode 0600
    (``tempfile.mkstemp``): client images stay private to the server's user.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format="PNG")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
