"""``takeone loras``: add, list and remove LoRAs in the blob store (every worker reads them).

    takeone loras add anime ./anime.safetensors --profile ltx-2 --surcharge 0.5
    takeone loras add ink https://example.com/ink.safetensors --data-dir data
    takeone loras list
    takeone loras remove anime

A LoRA is checked against its profile's transformer when it is added (module names and
shapes, read from the file's header and the transformer's config on the ``meta`` device): a
file of another model, a wrong shape, a pickle or an oversized file is refused here, by name.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from takeone.cli.arguments import SubParsers, add_data_dir
from takeone.core.blobs import BlobStore
from takeone.core.errors import InvalidRequest
from takeone.core.loras import LoraCatalog, LoraManifest, check_name

DEFAULT_MAX_MB = 2048.0
MiB = 1024 * 1024


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    loras = sub.add_parser("loras", help="add, list and remove LoRAs (per-request styles)")
    lsub = loras.add_subparsers(title="loras commands")
    add = lsub.add_parser("add", help="check a .safetensors LoRA against its profile and store it")
    _blob_args(add)
    add.add_argument("name", help="the name requests use (letters, digits, '_', '-')")
    add.add_argument("source", metavar="FILE_OR_URL", help="a .safetensors file, or an http(s) URL")
    add.add_argument("--profile", default=os.environ.get("TAKEONE_PROFILE", "ltx-2"),
                     help="the profile whose transformer it adapts (default: $TAKEONE_PROFILE or ltx-2)")
    add.add_argument("--surcharge", type=float, default=0.0, metavar="CREDITS",
                     help="credits added to each job's price that uses it")
    add.add_argument("--max-size-mb", type=float, default=DEFAULT_MAX_MB, help="the largest file accepted")
    add.add_argument("--weights", type=Path, metavar="DIR",
                     help="where the profile's transformer config is read (default: $TAKEONE_WEIGHTS)")
    add.add_argument("--replace", action="store_true", help="overwrite a LoRA of the same name")
    add.set_defaults(run=_add)
    listing = lsub.add_parser("list", help="list the stored LoRAs")
    _blob_args(listing)
    listing.set_defaults(run=_list)
    remove = lsub.add_parser("remove", help="remove a LoRA (jobs already queued with it fail)")
    _blob_args(remove)
    remove.add_argument("name", help="the LoRA to remove (requests naming it are refused from then on)")
    remove.set_defaults(run=_remove)


def _blob_args(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    p.add_argument("--storage", metavar="s3://BUCKET/PREFIX", default=os.environ.get("TAKEONE_STORAGE"),
                   help="the bucket a cluster keeps its files in (default: the data folder)")
    p.add_argument("--s3-endpoint", metavar="URL", help="the S3-compatible service, if not AWS")


def _catalog(args: argparse.Namespace) -> LoraCatalog:
    from takeone.backends.factory import open_blobs
    from takeone.core.settings import Settings

    settings = Settings(data_dir=args.data_dir, database_url=args.database, storage_url=args.storage,
                        s3_endpoint=args.s3_endpoint)
    blobs: BlobStore = open_blobs(settings, secret=b"")  # the catalog signs no links
    return LoraCatalog(blobs)


def _add(args: argparse.Namespace) -> int:
    name = check_name(args.name, "NAME")
    if args.surcharge < 0 or args.surcharge != args.surcharge:
        raise InvalidRequest("--surcharge", args.surcharge, "must be 0 or more credits")
    catalog = _catalog(args)
    if not args.replace and any(m.name == name for m in catalog.entries()):
        raise InvalidRequest("NAME", name, "is taken; remove it first or pass --replace")
    limit = int(args.max_size_mb * MiB)
    with tempfile.TemporaryDirectory() as tmp:
        path = _local_copy(args.source, Path(tmp), limit)
        manifest, data = _checked(path, name, args)
    catalog.add(manifest, data)
    print(f"added LoRA {name!r} for {manifest.profile}: rank {manifest.rank}, {len(manifest.targets)}"
          f" modules, {manifest.layout} layout, {manifest.size} bytes, surcharge {manifest.surcharge:g}")
    return 0


def _local_copy(source: str, folder: Path, limit: int) -> Path:
    """The file to check: the local file, or the URL fetched through the address guard."""
    if source.lower().startswith(("http://", "https://")):
        data = asyncio.run(_fetch(source, limit))
        path = folder / (source.rsplit("/", 1)[-1].split("?", 1)[0] or "lora.safetensors")
        path.write_bytes(data)
        return path
    path = Path(source)
    if not path.is_file():
        raise InvalidRequest("FILE_OR_URL", source, "is not a file")
    if path.stat().st_size > limit:
        raise InvalidRequest("FILE_OR_URL", source, f"is {path.stat().st_size} bytes; the limit is"
                                                    f" {limit} (--max-size-mb)")
    return path


async def _fetch(url: str, limit: int) -> bytes:
    from takeone.core.errors import ImageError
    from takeone.core.settings import env_fetch_allow
    from takeone.media.images import FetchPolicy
    from takeone.media.images import _fetch as fetch_guarded  # the SSRF-guarded download

    policy = FetchPolicy(allow_hosts=env_fetch_allow(), max_bytes=limit, total_timeout=600.0,
                         read_timeout=60.0)
    try:
        return await fetch_guarded(url, "FILE_OR_URL", policy)
    except ImageError as exc:
        raise InvalidRequest("FILE_OR_URL", url, exc.reason) from None


def _checked(path: Path, name: str, args: argparse.Namespace) -> tuple[LoraManifest, bytes]:
    from takeone.models.loras import inspect_lora, normalized_bytes, transformer_linears
    from takeone.models.registry import get_profile

    try:
        profile = get_profile(args.profile)
    except ValueError as exc:
        raise InvalidRequest("--profile", args.profile, str(exc)) from None
    linears = transformer_linears(profile, args.weights)
    report = inspect_lora(path, linears, profile.name, "FILE_OR_URL")
    data = normalized_bytes(path, report)
    manifest = LoraManifest(
        name=name, profile=profile.name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        rank=report.rank, targets=tuple(sorted(report.modules)), layout=report.layout,
        surcharge=float(args.surcharge), source_sha256=_sha256(path), added_at=time.time())
    return manifest, data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _list(args: argparse.Namespace) -> int:
    print(f"{'name':<24} {'profile':<16} {'rank':>5} {'modules':>8} {'size':>12} {'surcharge':>9}")
    for m in _catalog(args).entries():
        print(f"{m.name:<24} {m.profile:<16} {m.rank:>5} {len(m.targets):>8} {m.size:>12} {m.surcharge:>9g}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    manifest = _catalog(args).remove(check_name(args.name, "NAME"))
    print(f"removed LoRA {manifest.name!r}")
    return 0
