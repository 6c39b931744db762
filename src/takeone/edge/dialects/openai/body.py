"""``POST /v1/videos`` bodies: a multipart form (what the SDK sends) or JSON, onto a task.

- ``prompt``: required.
- ``model``: ``sora-2`` (and its dated names) runs the standard tier, ``sora-2-pro`` the
  quality tier; the served profile's own name is the standard tier too.
- ``seconds``: OpenAI's ``4``, ``8``, ``12`` are delivered exactly (97, 193, 289 frames at
  24 fps), as is any other whole second the profile serves (``1`` to ``20`` for LTX-2); a
  profile that does not make one of OpenAI's lengths serves the nearest it makes, and the
  answer's ``seconds`` says which. A length past the tier's memory cap at that size is a 400
  naming ``seconds``.
- ``size``: OpenAI's four sizes choose the aspect ratio (landscape 16:9, portrait 9:16) at the
  tier's resolution; the profile's exact output sizes are taken as they are. The answer's
  ``size`` is what is delivered.
- ``input_reference``: a file part (the first frame), or in JSON ``{"image_url": ...}``
  (an http(s) URL or a data URI); ``file_id`` references are not served (no Files API).
  A form is read as it arrives (:mod:`takeone.edge.uploads`): the file goes to disk, capped
  at the image limit, each text part at 64 KiB (``input_reference`` as text: the body limit);
  the part over its cap is a 400 naming it.

- ``loras`` (takeone extension): ``[{"name": ..., "scale": ...}]`` from the server's LoRA
  library (in a form, the same list as a JSON string).

Unknown fields are refused, as OpenAI does (``Unknown parameter``).

Example::

    async with open_fields(request, FormLimits(body=32 << 20, file=20 << 20), scratch) as fields:
        create = parse_create(fields, profile)
        task = create.task()  # ... and accept it before the block ends: then the file goes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from takeone.core.errors import MISSING, InvalidRequest, PayloadTooLarge
from takeone.core.loras import LoraUse, parse_loras
from takeone.core.task import Tier, VideoTask
from takeone.edge.dialects.openai.errors import UnknownParameter
from takeone.edge.submit import read_body
from takeone.edge.uploads import FormLimits, UploadedFile, read_form
from takeone.media.images import ImageFile
from takeone.models.recipe import Profile

MAX_PROMPT = 10_000
OPENAI_SECONDS = {"4": 4, "8": 8, "12": 12}
OPENAI_SIZES = {"720x1280": "9:16", "1280x720": "16:9", "1024x1792": "9:16", "1792x1024": "16:9"}
DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE = "sora-2", "4", "720x1280"
SORA_TIERS: Mapping[str, Tier] = {
    "sora-2": "standard", "sora-2-2025-10-06": "standard", "sora-2-2025-12-08": "standard",
    "sora-2-pro": "quality", "sora-2-pro-2025-10-06": "quality",
}
FIELDS = ("prompt", "model", "seconds", "size", "input_reference", "loras")
IMAGE_FIELD = "input_reference"
MULTIPART, URLENCODED = "multipart/form-data", "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class CreateVideo:
    """A valid create request, in OpenAI's words plus what it means here."""

    prompt: str
    model: str
    tier: Tier
    seconds: int
    size_asked: str
    aspect_ratio: str | None
    exact_size: str | None
    image: str | ImageFile | None  # an uploaded file on disk, or a URL / data URI / base64
    audio: bool
    loras: tuple[LoraUse, ...] = ()
    image_digest: str = ""  # SHA-256 of the image as sent (the file's bytes, or the text)

    def task(self, first_frame: str | None = None) -> VideoTask:
        return VideoTask(kind="i2v" if self.image is not None else "t2v", tier=self.tier,
                         seconds=self.seconds, aspect_ratio=self.aspect_ratio, size=self.exact_size,
                         audio=self.audio, prompt=self.prompt,
                         first_frame=first_frame if self.image is not None else None, loras=self.loras)

    def fingerprint(self) -> str:
        fields = {"prompt": self.prompt, "model": self.model, "seconds": self.seconds,
                  "size": self.size_asked, "image": self.image_digest}
        if self.loras:
            fields["loras"] = [[u.name, u.scale] for u in self.loras]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def rename(exc: InvalidRequest) -> InvalidRequest:
    """A core error in this dialect's field names."""
    names = {"tier": "model", "aspect_ratio": "size", "size": "size", "first_frame": IMAGE_FIELD,
             "audio": "model", "guidance": "model", "seconds": "seconds"}
    return type(exc)(names.get(exc.field, exc.field), exc.value, exc.reason)


@contextlib.asynccontextmanager
async def open_fields(request: Request, limits: FormLimits, scratch: Path,
                      executor: Executor | None = None) -> AsyncIterator[dict[str, Any]]:
    """The body's fields: form fields as strings, a file part as an :class:`UploadedFile` on
    disk (removed on leaving the block), JSON as parsed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == MULTIPART:
        async with read_form(request, limits, scratch, executor) as form:
            yield _form_fields(form.items)
        return
    if ctype == URLENCODED:
        yield await _urlencoded_fields(request, limits.body)
        return
    body = await read_body(request, limits.body)
    try:
        data = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("body", body[:60].decode("utf-8", "replace"),
                             "is not valid JSON or a multipart form") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", data, "must be a JSON object")
    yield data


def _capped(request: Request, limit: int) -> Callable[[], Awaitable[Message]]:
    """The request's ``receive``, refusing with 413 once more than ``limit`` bytes came."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
        return message

    return receive


async def _urlencoded_fields(request: Request, limit: int) -> dict[str, Any]:
    try:
        form = await Request(request.scope, _capped(request, limit)).form(max_files=0, max_fields=32)
    except PayloadTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - the form parser raises several kinds
        raise InvalidRequest("body", MISSING, f"is not a readable form ({type(exc).__name__})") from None
    return _form_fields([(name, value) for name, value in form.multi_items() if isinstance(value, str)])


def _form_fields(items: list[tuple[str, str | UploadedFile]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in items:
        if name.startswith(IMAGE_FIELD + "[") and name.endswith("]"):  # the SDK's dict encoding
            _set_reference_part(fields, name, value)
            continue
        if name in fields:
            raise InvalidRequest(name, MISSING, "is given more than once; send it once")
        fields[name] = value
    return fields


def _set_reference_part(fields: dict[str, Any], name: str, value: object) -> None:
    """``input_reference[image_url]`` and the like, into one object; never beside a file."""
    reference = fields.setdefault(IMAGE_FIELD, {})
    if not isinstance(reference, dict):
        raise InvalidRequest(IMAGE_FIELD, MISSING, f"is given both as a file and as {name}; send one")
    if isinstance(value, (UploadFile, UploadedFile)):
        raise InvalidRequest(name, MISSING, "must be a text field, not a file")
    part = name[len(IMAGE_FIELD) + 1:-1]
    if part in reference:
        raise InvalidRequest(name, MISSING, "is given more than once; send it once")
    reference[part] = value


def parse_create(fields: Mapping[str, Any], profile: Profile) -> CreateVideo:
    for name in fields:
        if name not in FIELDS:
            raise UnknownParameter(name)
    prompt = _prompt(fields.get("prompt", MISSING))
    model = _text(fields, "model", DEFAULT_MODEL)
    tier = _tier(model, profile)
    seconds = _seconds(fields.get("seconds", DEFAULT_SECONDS), profile)
    size = _text(fields, "size", DEFAULT_SIZE)
    aspect, exact = _size(size, tier, profile)
    image, digest = _image(fields.get(IMAGE_FIELD))
    return CreateVideo(prompt=prompt, model=model, tier=tier, seconds=seconds, size_asked=size,
                       aspect_ratio=aspect, exact_size=exact, image=image, image_digest=digest,
                       audio=profile.has_audio, loras=_loras(fields.get("loras")))


def _loras(value: object) -> tuple[LoraUse, ...]:
    if isinstance(value, str):  # a form field carries the list as JSON
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequest("loras", value, 'must be a JSON list of {"name": ..., "scale": ...}') from None
    return parse_loras(value)


def _prompt(value: object) -> str:
    if value is MISSING:
        raise InvalidRequest("prompt", MISSING, "is required")
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_PROMPT:
        raise InvalidRequest("prompt", value, f"must be a string of 1 to {MAX_PROMPT} characters")
    return value


def _text(fields: Mapping[str, Any], name: str, default: str) -> str:
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise InvalidRequest(name, value, "must be a string")
    return value


def _tier(model: str, profile: Profile) -> Tier:
    models: dict[str, Tier] = {**SORA_TIERS, profile.name: "standard"}
    if model not in models:
        raise InvalidRequest("model", model, f"must be one of {', '.join(models)}")
    return models[model]


def _seconds(value: object, profile: Profile) -> int:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    served = {str(d): d for d in profile.durations()}
    allowed = {**{k: _nearest(v, profile) for k, v in OPENAI_SECONDS.items()}, **served}
    if text is None or text.strip() not in allowed:
        raise InvalidRequest("seconds", value, f"must be 4, 8, 12 or a duration profile {profile.name!r}"
                             f" serves ({profile.durations_label()})")
    return allowed[text.strip()]


def _nearest(seconds: int, profile: Profile) -> int:
    return min(profile.durations(), key=lambda d: (abs(d - seconds), -d))


def _size(size: str, tier: Tier, profile: Profile) -> tuple[str | None, str | None]:
    if size in OPENAI_SIZES:
        return OPENAI_SIZES[size], None
    quality = profile.qualities.get(tier)
    exact = quality.output_sizes() if quality is not None else []
    if size in exact:
        return None, size
    raise InvalidRequest("size", size, f"must be one of {', '.join([*OPENAI_SIZES, *exact])}")


def _image(value: object) -> tuple[str | ImageFile | None, str]:
    """The image and the SHA-256 of what was sent."""
    if value is None:
        return None, ""
    if isinstance(value, UploadedFile):
        return ImageFile(value.path, value.filename, value.size), value.sha256
    if isinstance(value, str) and value:
        return value, _digest(value)  # a URL, data URI or base64 sent as a plain field
    if isinstance(value, dict):
        if set(value) - {"image_url", "file_id"}:
            raise InvalidRequest(IMAGE_FIELD, value, "takes image_url (or file_id) only")
        if value.get("file_id") is not None:
            raise InvalidRequest(f"{IMAGE_FIELD}.file_id", value["file_id"],
                                 "file ids are not served (this server has no Files API);"
                                 " upload the image as a file or give image_url")
        url = value.get("image_url")
        if isinstance(url, str) and url:
            return url, _digest(url)
    raise InvalidRequest(IMAGE_FIELD, value, "must be an image file, or {\"image_url\": URL}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
