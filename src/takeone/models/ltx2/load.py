"""Load an LTX-2 profile from disk: each component from its own folder, once, then placed.

The profile's :class:`~takeone.models.recipe.WeightSource` list says which repo folder
holds each component; :func:`takeone.models.weights.resolve` maps them to local folders (a
Hugging Face cache or ``--weights`` folders), so loading never touches the network. Loading
component by component (rather than one ``from_pretrained`` of a whole repo) lets two repos
contribute parts (the distilled transformer lives in another repo than the rest) and reads
exactly the folders ``takeone pull`` fetched.

Before anything is loaded onto a GPU, the card's free memory is compared with the profile's
need (:func:`takeone.models.weights.plan_offload`): a profile that cannot fit fails at startup
with a clear message, or streams its least-used components from host RAM when offloading
allows it.

A profile without a source list (a whole diffusers pipeline folder or cached repo id as its
``weights``) is loaded with one ``from_pretrained``.

Example::

    model = load_model(get_profile("ltx-2"), torch.device("cuda"))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from transformers import AutoTokenizer, Gemma3ForConditionalGeneration

from takeone.models.ltx2.model import TRANSFORMERS, Ltx2Model
from takeone.models.ltx2.speedups import fp8_unavailable_reason
from takeone.models.ltx2.warmup import warmup_recipes
from takeone.models.recipe import Profile
from takeone.models.weights import plan_offload, resolve

# Component name -> how to load its folder. Both transformers share one class.
MODEL_CLASSES: Mapping[str, Any] = {
    "transformer": LTX2VideoTransformer3DModel,
    "transformer_full": LTX2VideoTransformer3DModel,
    "connectors": LTX2TextConnectors,
    "vae": AutoencoderKLLTX2Video,
    "audio_vae": AutoencoderKLLTX2Audio,
    "vocoder": LTX2Vocoder,
    "latent_upsampler": LTX2LatentUpsamplerModel,
}


def load_model(
    profile: Profile, device: torch.device, weights: str | Path | None = None, offload: str | None = None
) -> Ltx2Model:
    """The family's entry point (see :mod:`takeone.models.registry`): ``weights`` overrides the
    profile's weights (a ``--weights`` folder for profiles with sources, else a pipeline folder)."""
    if profile.sources:
        return load_ltx2(profile, device, Path(weights) if weights is not None else None, offload)
    source = str(weights) if weights is not None else profile.weights
    return Ltx2Model.from_pretrained(source, device, serving_dtype(device))


def load_ltx2(
    profile: Profile,
    device: torch.device,
    root: Path | None = None,
    offload: str | None = None,
    cache_dir: Path | None = None,
) -> Ltx2Model:
    """Load ``profile``'s components from disk onto ``device``, with its speed-ups applied.

    ``root`` is a weights folder (``--weights``), ``offload`` overrides ``profile.offload``
    and ``cache_dir`` the Hugging Face cache. Raises ``WeightsMissing`` before reading
    anything if a folder is absent, and ``InsufficientGpuMemory`` if the card is too small.
    """
    paths = resolve(profile, root, cache_dir)
    offloaded = offload_plan(profile, device, offload)
    dtype = serving_dtype(device)
    components = {name: load_component(name, path, dtype) for name, path in paths.items()}
    return Ltx2Model(components, device, offloaded, profile.speedups, warmup_recipes(profile))


def offload_plan(profile: Profile, device: torch.device, offload: str | None) -> frozenset[str]:
    """On a GPU: what must stream from host RAM to fit. Elsewhere memory is the host's own,
    and only an explicit ``group`` offloads (which exercises that path in tests)."""
    mode = offload or profile.offload
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return plan_offload(profile, free / 2**30, mode, fp8_components(profile, device))
    return plan_offload(profile, float("inf"), "group") if mode == "group" else frozenset()


def fp8_components(profile: Profile, device: torch.device) -> frozenset[str]:
    """The transformers that will hold float8 weights on ``device`` (if they stay resident)."""
    if not profile.speedups.fp8 or fp8_unavailable_reason(device) is not None:
        return frozenset()
    return frozenset(source.component for source in profile.sources if source.component in TRANSFORMERS)


def serving_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on GPUs (what LTX-2 is trained and served in), float32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_component(name: str, path: Path, dtype: torch.dtype) -> Any:
    """One component from its local folder, in ``dtype`` where it has weights."""
    if name == "tokenizer":
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    if name == "text_encoder":
        encoder: Any = Gemma3ForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
        return encoder.eval()
    if name == "scheduler":
        scheduler_class: Any = FlowMatchEulerDiscreteScheduler
        return scheduler_class.from_pretrained(path, local_files_only=True)
    if name not in MODEL_CLASSES:
        raise ValueError(f"LTX-2 has no component called {name!r}")
    return MODEL_CLASSES[name].from_pretrained(path, torch_dtype=dtype, local_files_only=True).eval()
