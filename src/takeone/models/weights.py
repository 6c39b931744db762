"""A profile's weights: which files it needs, whether they are on disk, downloading them, memory.

Serving never downloads: a worker reads weights from disk only, so a missing file fails at
startup with a message naming the repos and ``takeone pull <profile>`` instead of a
half-hour download inside the first request. ``pull`` is the only place that touches the
network. Everything here is torch-free (``huggingface_hub`` only), so the CLI and the API
process can call it.

Where weights are read from, for each repo a profile names:

- ``root/<org>/<name>``, a folder laid out like the repo (``hf download --local-dir``), when a
  weights root is given (``--weights DIR``, or ``TAKEONE_WEIGHTS``, see :func:`root_from_env`);
- else ``root`` itself used as a Hugging Face cache (``models--<org>--<name>``);
- else the usual Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``, as ``huggingface_hub``
  reads them; ``HF_TOKEN`` likewise for gated or private repos).

Revisions: a :class:`~takeone.models.recipe.WeightSource` may pin its repo to a commit;
``TAKEONE_REVISIONS="org/name=<commit>,..."`` (read when called, by ``pull`` and by the
loaders alike, so both see the same snapshot) pins or re-pins repos without editing the
profile table. A pinned repo is pulled at that commit and read from that snapshot of the
cache; a ``root/<org>/<name>`` folder is checked against the commit ``hf download
--local-dir`` recorded for its files, when it recorded one. ``takeone --revision
org/name=<commit>`` sets the same pins from the command line.

Which weights ran: :func:`pull` records the commit each repo resolved to in
``takeone-revisions.json`` in the weights folder (the root, or the cache it downloaded into),
and :func:`revisions` reads, for each repo a profile reads, the commit of the snapshot on disk
(a cache snapshot is named by its commit; a ``--local-dir`` folder recorded it per file), or
that record where the folder says nothing. The worker's ready line, ``takeone profiles``, the
start banner and each job's metrics name them.

Example::

    require_weights("ltx-2")              # raises WeightsMissing if anything is absent
    paths = resolve(get_profile("ltx-2"))  # component -> local folder or file
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

from takeone.core.errors import InsufficientGpuMemory, WeightsMissing
from takeone.models.recipe import OFFLOAD_MODES, Profile, WeightSource
from takeone.models.registry import get_profile

__all__ = ["InsufficientGpuMemory", "WeightsMissing", "check", "pull", "require_weights", "resolve"]

ENV_ROOT = "TAKEONE_WEIGHTS"
ENV_REVISIONS = "TAKEONE_REVISIONS"
REVISIONS_FILE = "takeone-revisions.json"
UNKNOWN_REVISION = "unknown"
BUILTIN_PREFIX = "builtin:"
RESERVED_GIB = 4.0  # CUDA context, allocator fragmentation, cuDNN/cuBLAS workspaces
# What "auto" streams from host RAM first: the least used component first (the full DiT
# runs for master jobs only, the text encoder once per job, the distilled DiT every step).
OFFLOAD_ORDER = ("transformer_full", "text_encoder", "transformer_2", "transformer")
# A transformer's size in fp8 over its bf16 size: the block linears that fp8 quantizes hold
# 98.1% of LTX-2's DiT parameters (18.53 of 18.88 B, counted on the full-size config) and
# drop to one byte each; the rest (and the per-row scales) stay bf16. Rounded up.
FP8_SIZE_SHARE = 0.52


@dataclass(frozen=True)
class RepoNeed:
    """One repo and exactly the folders and files of it a profile reads (``()``: all of it)."""

    repo: str
    folders: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    revision: str | None = None

    @property
    def allow_patterns(self) -> list[str] | None:
        """``snapshot_download`` patterns for exactly these paths."""
        if not self.folders and not self.files:
            return None
        return [f"{folder}/*" for folder in self.folders] + list(self.files)

    @property
    def label(self) -> str:
        """``org/name@commit``, or ``org/name`` when unpinned."""
        return f"{self.repo}@{self.revision}" if self.revision else self.repo

    def describe(self) -> str:
        paths = [f"{folder}/" for folder in self.folders] + list(self.files)
        return f"{self.label} ({', '.join(paths)})" if paths else f"{self.label} (whole repo)"


def needs(profile: Profile) -> list[RepoNeed]:
    """Every repo ``profile`` reads, with the folders and files it needs, in first-use order,
    pinned as the profile and ``TAKEONE_REVISIONS`` say."""
    if profile.sources:
        return _group(pinned(profile).sources)
    repos = [profile.weights, *profile.pipeline_weights.values()]
    unique = dict.fromkeys(repo for repo in repos if _is_repo_id(repo))
    return [RepoNeed(repo) for repo in unique]


def check(profile: Profile, root: Path | None = None, cache_dir: Path | None = None) -> list[str]:
    """What is missing for ``profile``, as ``repo/path`` strings; empty when it can load."""
    missing: list[str] = []
    for need in needs(profile):
        missing.extend(_missing_in(need, _locate(need, root, cache_dir)))
    return missing


def require_weights(profile_name: str, root: Path | None = None, cache_dir: Path | None = None) -> None:
    """Fail fast (before serving) when ``profile_name``'s weights are not all on disk.

    Built-in profiles (``tiny``) always pass. The error names every missing repo path and the
    command that downloads them.
    """
    profile = get_profile(profile_name)
    missing = check(profile, root, cache_dir)
    if missing:
        raise WeightsMissing(missing_message(profile, missing, root))


def missing_message(profile: Profile, missing: list[str], root: Path | None) -> str:
    where = f"under {root} or " if root else ""
    listed = "\n  ".join(missing)
    return (
        f"profile {profile.name!r} needs weights that are not on this machine "
        f"({where}in the Hugging Face cache):\n  {listed}\n"
        f"download them with: takeone pull {profile.name}"
    )


def resolve(profile: Profile, root: Path | None = None, cache_dir: Path | None = None) -> dict[str, Path]:
    """Each component of ``profile`` mapped to its local folder or file; raises ``WeightsMissing``."""
    missing = check(profile, root, cache_dir)
    if missing:
        raise WeightsMissing(missing_message(profile, missing, root))
    resolved: dict[str, Path] = {}
    for source in pinned(profile).sources:
        base = _locate(RepoNeed(source.repo, revision=source.revision), root, cache_dir)
        assert base is not None  # check() found it
        resolved[source.component] = base / source.path
    return resolved


def pull(profile: Profile, root: Path | None = None, cache_dir: Path | None = None) -> list[str]:
    """Download exactly what ``profile`` needs; return what is still missing afterwards.

    Into the Hugging Face cache, or with ``root`` into ``root/<org>/<name>`` folders. Files
    already there are skipped, interrupted downloads resume, and ``huggingface_hub`` shows
    its progress bars and uses ``HF_TOKEN`` for gated repos.
    """
    resolved: dict[str, str] = {}
    for need in needs(profile):
        local_dir = root / need.repo if root is not None else None
        try:
            folder = snapshot_download(
                need.repo, revision=need.revision, allow_patterns=need.allow_patterns, cache_dir=cache_dir,
                local_dir=local_dir,
            )
        except GatedRepoError as exc:
            raise PermissionError(gated_message(profile, need.repo)) from exc
        if commit := revision_of(Path(folder)) or need.revision:
            resolved[need.repo] = commit
    record_revisions(resolved, root, cache_dir)
    return check(profile, root, cache_dir)


def revisions_file(root: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Where :func:`pull` records commits: in the weights root, else in the cache it used."""
    if root is not None:
        return root / REVISIONS_FILE
    if cache_dir is not None:
        return cache_dir / REVISIONS_FILE
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / REVISIONS_FILE


def recorded_revisions(root: Path | None = None, cache_dir: Path | None = None) -> dict[str, str]:
    """What :func:`pull` recorded (repo -> commit); empty when nothing was, or it is unreadable."""
    try:
        data = json.loads(revisions_file(root, cache_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {str(repo): str(commit) for repo, commit in data.items()} if isinstance(data, dict) else {}


def record_revisions(resolved: Mapping[str, str], root: Path | None = None, cache_dir: Path | None = None) -> None:
    """Add ``resolved`` (repo -> commit) to the record, keeping other repos' entries."""
    if not resolved:
        return
    target = revisions_file(root, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    merged = {**recorded_revisions(root, cache_dir), **resolved}
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(dict(sorted(merged.items())), indent=2) + "\n")
    os.replace(temporary, target)


def revision_of(folder: Path) -> str | None:
    """The commit a located repo folder holds: a cache snapshot is named by it; a ``--local-dir``
    folder recorded it for each file (one commit for all, or it is mixed: ``None``)."""
    if folder.parent.name == "snapshots":
        return folder.name
    records = (folder / ".cache" / "huggingface" / "download").rglob("*.metadata")
    commits = {record.read_text().split("\n", 1)[0].strip() for record in records}
    return commits.pop() if len(commits) == 1 else None


def revisions(profile: Profile, root: Path | None = None, cache_dir: Path | None = None) -> dict[str, str]:
    """repo -> commit of each repo ``profile`` reads that is on disk: the folder's own, else
    what :func:`pull` recorded, else ``"unknown"``. Repos not on disk are left out."""
    recorded = recorded_revisions(root, cache_dir)
    found: dict[str, str] = {}
    for need in needs(profile):
        folder = _locate(need, root, cache_dir)
        if folder is not None:
            found[need.repo] = revision_of(folder) or recorded.get(need.repo) or UNKNOWN_REVISION
    return found


def revision_lines(profile: Profile, root: Path | None = None) -> list[str]:
    """``weights here: org/name at <commit>`` for each repo of ``profile`` on disk."""
    return [f"weights here: {repo} at {commit}" for repo, commit in revisions(profile, root).items()]


def gated_message(profile: Profile, repo: str) -> str:
    """What to do when the Hub refuses a gated repo (no token, or terms not accepted)."""
    return (
        f"access to {repo} is not granted: it is a gated repo. Accept its terms at "
        f"https://huggingface.co/{repo} while logged in, create a read token for that account, "
        f"set HF_TOKEN to it, and rerun: takeone pull {profile.name}"
    )


def pinned(profile: Profile, environ: Mapping[str, str] | None = None) -> Profile:
    """``profile`` with the ``TAKEONE_REVISIONS`` pins (read now) over its table's."""
    read = {source.repo for source in profile.sources}
    pins = {repo: revision for repo, revision in revisions_from_env(environ).items() if repo in read}
    return profile.with_revisions(pins) if pins else profile


def revisions_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``TAKEONE_REVISIONS="org/name=<commit>,org/other=<commit>"`` as a mapping (read when called).

    Pins naming repos a profile does not read are ignored for that profile."""
    value = (os.environ if environ is None else environ).get(ENV_REVISIONS, "")
    return parse_pins(value.split(","), ENV_REVISIONS)


def parse_pins(items: Iterable[str], where: str = "--revision") -> dict[str, str]:
    """``org/name=<commit>`` items as a mapping; ``ValueError`` naming ``where`` and the item."""
    pins: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in items)):
        repo, sep, revision = item.partition("=")
        if not sep or not repo.strip() or not revision.strip() or repo.strip().count("/") != 1:
            raise ValueError(f"{where} entries are org/name=<commit>, not {item!r}")
        pins[repo.strip()] = revision.strip()
    return pins


def pin_from_flags(flags: Iterable[str], environ: MutableMapping[str, str] | None = None) -> None:
    """Merge ``--revision org/name=<commit>`` flags over ``TAKEONE_REVISIONS`` into it, so that
    this process and the workers it starts (which inherit it) read the same snapshots."""
    target = os.environ if environ is None else environ
    pins = {**revisions_from_env(target), **parse_pins(flags)}
    if pins:
        target[ENV_REVISIONS] = ",".join(f"{repo}={commit}" for repo, commit in pins.items())


def pin_lines(profile: Profile) -> list[str]:
    """What ``takeone profiles`` prints about revisions: one line per repo read."""
    wanted = needs(profile)
    if not wanted:
        return []
    lines = [f"weights: {need.repo} @ {need.revision or 'unpinned'}" for need in wanted]
    if any(need.revision is None for need in wanted):
        lines.append(
            "  unpinned: no commit hash could be verified when this table was written, so none is "
            f"invented; pin with {ENV_REVISIONS}=org/name=<commit>,... (pull and serve both read it)"
        )
    return lines


def root_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """The weights root named by ``TAKEONE_WEIGHTS`` (read when called, never at import)."""
    value = (os.environ if environ is None else environ).get(ENV_ROOT, "").strip()
    return Path(value).expanduser() if value else None


def weights_gib(profile: Profile, offloaded: Iterable[str] = (), fp8: Iterable[str] = ()) -> float:
    """GiB of weights that stay on the card when ``offloaded`` components stream from host RAM
    and the resident ones among ``fp8`` hold their linear layers in float8."""
    skip, small = set(offloaded), set(fp8)
    return sum(
        source.gib * (FP8_SIZE_SHARE if source.component in small else 1.0)
        for source in profile.sources
        if source.component not in skip
    )


def plan_offload(
    profile: Profile, card_gib: float, mode: str | None = None, fp8: Iterable[str] = ()
) -> frozenset[str]:
    """Which components to stream from host RAM so that ``profile`` fits in ``card_gib``.

    ``none`` offloads nothing, ``group`` every large component, ``auto`` as few as needed in
    :data:`OFFLOAD_ORDER`. Components in ``fp8`` (the transformers, when fp8 is on and the
    card has it) count at their float8 size while resident; streamed ones stay bf16. Raises
    ``InsufficientGpuMemory`` when even the most offloading does not fit.
    """
    mode = mode or profile.offload
    if mode not in OFFLOAD_MODES:
        raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, not {mode!r}")
    present = [name for name in OFFLOAD_ORDER if any(s.component == name for s in profile.sources)]
    options: dict[str, list[list[str]]] = {"none": [[]], "group": [present], "auto": [[], *_prefixes(present)]}
    small = frozenset(fp8)
    for offloaded in options[mode]:
        if _needed_gib(profile, offloaded, small) <= card_gib:
            return frozenset(offloaded)
    raise InsufficientGpuMemory(_memory_message(profile, card_gib, mode, present, small))


def _needed_gib(profile: Profile, offloaded: Iterable[str], fp8: frozenset[str]) -> float:
    return weights_gib(profile, offloaded, fp8) + profile.activation_gib + RESERVED_GIB


def _prefixes(names: list[str]) -> list[list[str]]:
    return [names[: count + 1] for count in range(len(names))]


def _memory_message(
    profile: Profile, card_gib: float, mode: str, offloadable: list[str], fp8: frozenset[str]
) -> str:
    need, least = _needed_gib(profile, (), fp8), _needed_gib(profile, offloadable, fp8)
    hint = "set offload to 'auto' or 'group'" if mode == "none" else "use a card with more memory"
    return (
        f"profile {profile.name!r} needs about {need:.0f} GiB of GPU memory with every component "
        f"resident ({least:.0f} GiB with {', '.join(offloadable) or 'nothing'} offloaded), but the card "
        f"has {card_gib:.0f} GiB free (offload={mode!r}); {hint}"
    )


def _group(sources: Iterable[WeightSource]) -> list[RepoNeed]:
    folders: dict[str, list[str]] = {}
    files: dict[str, list[str]] = {}
    revisions: dict[str, str | None] = {}
    for source in sources:
        target = files if source.filename else folders
        folders.setdefault(source.repo, [])
        files.setdefault(source.repo, [])
        revisions.setdefault(source.repo, source.revision)
        if source.path not in target[source.repo]:
            target[source.repo].append(source.path)
    return [RepoNeed(repo, tuple(folders[repo]), tuple(files[repo]), revisions[repo]) for repo in folders]


def _is_repo_id(value: str) -> bool:
    """``org/name`` that is neither a built-in nor an existing local folder."""
    if value.startswith(BUILTIN_PREFIX) or Path(value).expanduser().exists():
        return False
    return value.count("/") == 1 and not value.startswith((".", "/", "~"))


def _locate(need: RepoNeed, root: Path | None, cache_dir: Path | None) -> Path | None:
    """The local folder holding ``need.repo`` (at ``need.revision`` when pinned), or ``None``."""
    if root is not None and (root / need.repo).is_dir():
        folder = root / need.repo
        return folder if _local_revision_matches(folder, need.revision) else None
    caches = [root, cache_dir] if root is not None else [cache_dir]
    for cache in caches:
        try:
            found = snapshot_download(
                need.repo, revision=need.revision, allow_patterns=need.allow_patterns, cache_dir=cache,
                local_files_only=True,
            )
        except LocalEntryNotFoundError:  # includes an incomplete snapshot and an absent revision
            continue
        return Path(found)
    return None


def _local_revision_matches(folder: Path, revision: str | None) -> bool:
    """``hf download --local-dir`` records each file's commit in ``.cache/huggingface/download/
    *.metadata`` (commit on the first line); a pinned folder must agree where it recorded any."""
    if revision is None:
        return True
    records = (folder / ".cache" / "huggingface" / "download").rglob("*.metadata")
    commits = {record.read_text().split("\n", 1)[0].strip() for record in records}
    return not commits or commits == {revision}


def _missing_in(need: RepoNeed, base: Path | None) -> list[str]:
    if base is None:
        paths = [f"{folder}/" for folder in need.folders] + list(need.files)
        return [f"{need.label}/{path}" for path in paths] or [need.label]
    missing = [f"{need.label}/{folder}/" for folder in need.folders if not _complete_folder(base / folder)]
    return missing + [f"{need.label}/{name}" for name in need.files if not (base / name).is_file()]


def _complete_folder(folder: Path) -> bool:
    """A config file is there, every file resolves (no dangling cache links), every shard exists."""
    if not folder.is_dir():
        return False
    entries = list(folder.rglob("*"))
    if not any(entry.suffix == ".json" for entry in entries) or not all(e.exists() for e in entries):
        return False
    return all(_shards_present(index) for index in folder.glob("*.index.json"))


def _shards_present(index: Path) -> bool:
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
    except (OSError, ValueError):
        return False
    return all((index.parent / shard).is_file() for shard in set(weight_map.values()))
