"""The LoRA library, free of torch: request choices, manifests, and the catalog in the blob store.

A LoRA is two blobs: ``loras/<name>.safetensors`` (the adapter, stored in the diffusers/PEFT
key layout whatever layout it was added in) and ``loras/<name>.json`` (its manifest: profile,
size, checksum, rank, target modules, surcharge). Keeping the catalog in the blob store means
every worker of a cluster reads the same library, and no database table is involved.

A request names LoRAs as ``[{"name": ..., "scale": ...}]`` (at most :data:`MAX_LORAS`, each
scale within :data:`SCALE_RANGE`); :func:`parse_loras` checks that list, naming the field.

Example::

    uses = parse_loras([{"name": "anime", "scale": 0.8}])
    catalog = LoraCatalog(blobs)
    catalog.get("anime").surcharge
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from takeone.core.blobs import BlobStore
from takeone.core.errors import InvalidRequest, NotFound

MAX_LORAS = 4
SCALE_RANGE = (-2.0, 2.0)
DEFAULT_SCALE = 1.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SCOPE_PREFIX = "lora:"
PREFIX = "loras/"


@dataclass(frozen=True)
class LoraUse:
    """One LoRA a job runs with, and how strongly (``scale`` 0 leaves the base model)."""

    name: str
    scale: float = DEFAULT_SCALE


@dataclass(frozen=True)
class LoraManifest:
    """What the library knows of one stored LoRA (written beside its file)."""

    name: str
    profile: str
    size: int  # bytes of the stored (normalized) file
    sha256: str  # of the stored file
    rank: int
    targets: tuple[str, ...]  # the transformer modules it adapts
    layout: str  # the layout it was added in: "diffusers" or "kohya"
    surcharge: float = 0.0  # credits added to a job's price per use
    source_sha256: str = ""  # of the file as it was given
    added_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LoraManifest:
        fields = json.loads(data)
        fields["targets"] = tuple(fields.get("targets", ()))
        return cls(**fields)

    def public(self) -> dict[str, Any]:
        """What ``GET /v1/loras`` tells a client about it."""
        return {"name": self.name, "profile": self.profile, "rank": self.rank,
                "surcharge": self.surcharge, "size": self.size}


def check_name(name: object, field_name: str = "name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidRequest(field_name, name, "must be 1 to 64 letters, digits, '_' or '-',"
                                               " starting with a letter or digit")
    return name


def file_key(name: str) -> str:
    return f"{PREFIX}{check_name(name)}.safetensors"


def manifest_key(name: str) -> str:
    return f"{PREFIX}{check_name(name)}.json"


def parse_loras(value: object, field_name: str = "loras") -> tuple[LoraUse, ...]:
    """A request's ``loras`` list; a 400 naming the element's field otherwise."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidRequest(field_name, value, 'must be a list of {"name": ..., "scale": ...}')
    if len(value) > MAX_LORAS:
        raise InvalidRequest(field_name, f"{len(value)} items", f"takes at most {MAX_LORAS} LoRAs")
    uses: list[LoraUse] = []
    for i, item in enumerate(value):
        where = f"{field_name}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(where, item, 'must be an object {"name": ..., "scale": ...}')
        unknown = set(item) - {"name", "scale"}
        if unknown:
            raise InvalidRequest(f"{where}.{sorted(unknown)[0]}", item[sorted(unknown)[0]],
                                 "unknown field (a LoRA takes name and scale)")
        if "name" not in item:
            raise InvalidRequest(f"{where}.name", None, "is required")
        name = check_name(item["name"], f"{where}.name")
        scale = item.get("scale", DEFAULT_SCALE)
        low, high = SCALE_RANGE
        if (isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale)
                or not low <= scale <= high):
            raise InvalidRequest(f"{where}.scale", scale, f"must be a number from {low:g} to {high:g}")
        if any(use.name == name for use in uses):
            raise InvalidRequest(f"{where}.name", name, "is named twice")
        uses.append(LoraUse(name, float(scale)))
    return tuple(uses)


def allowed(scopes: Sequence[str] | None, name: str) -> bool:
    """Whether a key's scopes let it use LoRA ``name``: a key with no ``lora:NAME`` scope may
    use every LoRA; one with some may use only those."""
    named = [s[len(SCOPE_PREFIX):] for s in scopes or () if s.startswith(SCOPE_PREFIX)]
    return not named or name in named


def describe(uses: Iterable[LoraUse]) -> str:
    """``anime@0.8,ink@1`` for log lines (empty: no LoRA)."""
    return ",".join(f"{u.name}@{u.scale:g}" for u in uses)


class LoraCatalog:
    """The library in a blob store: manifests by name, files for workers."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def get(self, name: str) -> LoraManifest:
        key = manifest_key(name)
        if self.blobs.stat(key) is None:
            raise NotFound(f"no LoRA named {name!r}")
        return LoraManifest.from_json(b"".join(self.blobs.open(key)))

    def entries(self) -> list[LoraManifest]:
        keys = sorted(k for k in self.blobs.older_than(PREFIX, math.inf) if k.endswith(".json"))
        found = []
        for key in keys:
            try:
                found.append(self.get(key[len(PREFIX):-len(".json")]))
            except (NotFound, InvalidRequest, ValueError, TypeError):
                continue  # removed meanwhile, or not a manifest this version reads
        return found

    def add(self, manifest: LoraManifest, data: bytes) -> None:
        """Store the file first, the manifest last: a LoRA is listed only once it is whole."""
        self.blobs.put(file_key(manifest.name), data)
        self.blobs.put(manifest_key(manifest.name), manifest.to_json())

    def remove(self, name: str) -> LoraManifest:
        manifest = self.get(name)
        self.blobs.delete(manifest_key(name))
        self.blobs.delete(file_key(name))
        return manifest

    def resolve(self, uses: Sequence[LoraUse], profile: str, scopes: Sequence[str] | None,
                field_name: str = "loras") -> list[LoraManifest]:
        """The manifests of a request's LoRAs; a 400 naming ``loras[i].name`` for one that is
        unknown, for another profile, or outside the key's scopes."""
        manifests = []
        for i, use in enumerate(uses):
            where = f"{field_name}[{i}].name"
            try:
                manifest = self.get(use.name)
            except NotFound:
                manifest = None
            if manifest is None or not allowed(scopes, use.name):
                raise InvalidRequest(where, use.name, "is not a LoRA this key may use (see GET /v1/loras)")
            if manifest.profile != profile:
                raise InvalidRequest(where, use.name, f"is for profile {manifest.profile!r};"
                                                      f" this server runs {profile!r}")
            manifests.append(manifest)
        return manifests
