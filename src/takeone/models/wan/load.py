"""Load the ``wan-2.2`` profile's checkpoints from disk (never the network).

Example::

    model = load_model(get_profile("wan-2.2"), torch.device("cuda"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from takeone.models.recipe import Profile
from takeone.models.wan.model import PIPELINES, Dtype, WanModel
from takeone.models.weights import WeightsMissing, check, missing_message, pinned


@dataclass(frozen=True)
class WanSources:
    """Where each pipeline's checkpoint is read from; serving never downloads.

    ``repos`` maps a pipeline name to a local folder or a repo id, which is then read from the
    Hugging Face cache ``cache_dir`` (``None``: the usual ``HF_HOME`` one) at the snapshot
    ``revisions`` pins for that pipeline (none: the one ``refs/main`` names).
    """

    repos: Mapping[str, str]
    cache_dir: str | None = None
    revisions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def locate(
        cls, repos: Mapping[str, str], root: Path | None, revisions: Mapping[str, str | None] | None = None
    ) -> WanSources:
        """The rules of :mod:`takeone.models.weights`: a repo found as the folder
        ``root/<org>/<name>`` (``hf download --local-dir``) is read from there; any other is
        looked up in ``root`` as a Hugging Face cache, or without ``root`` in the usual one."""
        pins = {name: rev for name, rev in (revisions or {}).items() if rev}
        if root is None:
            return cls(dict(repos), revisions=pins)
        if not root.is_dir():
            raise ValueError(f"Wan weights folder {root} does not exist")
        folders = {name for name, repo in repos.items() if (root / repo).is_dir()}
        resolved = {name: str(root / repo) if name in folders else repo for name, repo in repos.items()}
        cached = {name: rev for name, rev in pins.items() if name not in folders}  # folders have no revisions
        return cls(resolved, cache_dir=str(root), revisions=cached)

    def load_arguments(self, name: str) -> dict[str, Any]:
        pin = {"revision": self.revisions[name]} if name in self.revisions else {}
        return {"cache_dir": self.cache_dir, "local_files_only": True, **pin}


def wan_dtype(device: torch.device) -> Dtype:
    """bf16 transformers and text encoder on GPUs, with the VAE and CLIP encoder in float32 (the
    CLIP processor hands over float32 pixels; the VAE decodes more cleanly); float32 on CPU."""
    if device.type != "cuda":
        return torch.float32
    return {"default": torch.bfloat16, "vae": torch.float32, "image_encoder": torch.float32}


def load_model(
    profile: Profile, device: torch.device, weights: str | Path | None = None, offload: str | None = None
) -> WanModel:
    """The family's entry point: ``profile``'s three checkpoints from disk (``weights``: a folder,
    see :meth:`WanSources.locate`). Raises ``WeightsMissing`` naming every absent folder of all
    three repos before loading anything, so a lazy load cannot fail on a missing file later.

    On CUDA the model offloads (see :mod:`takeone.models.wan.model`) unless ``offload`` (default: the
    profile's) is ``"none"``; elsewhere host memory is the device's, so nothing moves.
    """
    root = Path(weights) if weights is not None else None
    repos = {name: profile.pipeline_weights.get(name, profile.weights) for name in PIPELINES}
    revisions = {source.repo: source.revision for source in pinned(profile).sources}
    sources = WanSources.locate(repos, root, {name: revisions.get(repo) for name, repo in repos.items()})
    missing = check(profile, root)
    if missing:
        raise WeightsMissing(missing_message(profile, missing, root))
    streams = device.type == "cuda" and (offload or profile.offload) != "none"
    return WanModel(sources, device, wan_dtype(device), offload=streams)


