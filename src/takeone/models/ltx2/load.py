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

import importlib
import json
from pathlib import Path
from typing import Any

import torch

from takeone.models.ltx2.model import TRANSFORMERS, Ltx2Model
from takeone.models.ltx2.speedups import fp8_unavailable_reason
from takeone.models.ltx2.warmup import warmup_recipes
from takeone.models.recipe import Profile
from takeone.models.weights import plan_offload, resolve

# Where a class named in a repo may come from: transformers, diffusers, or one of diffusers'
# pipeline packages (``["ltx2", "LTX2VocoderWithBWE"]`` in a model_index.json). Nothing else:
# a repo's files choose among these classes, never which code to import.
LIBRARIES = ("transformers", "diffusers")
PIPELINE_PACKAGES = ("ltx2",)


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
    index_file = paths.pop("model_index", None)
    del index_file  # read per folder: each repo's own model_index.json names its classes
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
    """One component from its local folder, in ``dtype`` where it has weights, as the class
    its repo names (:func:`component_class`): Gemma 3 or Gemma 4, the plain or the
    bandwidth-extending vocoder, whatever the checkpoint is."""
    cls = component_class(path)
    tokenizer = cls.__name__ == "AutoTokenizer" or _subclass(cls, "transformers", "PreTrainedTokenizerBase")
    if tokenizer or _subclass(cls, "diffusers", "SchedulerMixin"):
        return cls.from_pretrained(path, local_files_only=True)
    if _subclass(cls, "transformers", "PreTrainedModel"):
        return cls.from_pretrained(path, dtype=dtype, local_files_only=True).eval()
    if _subclass(cls, "diffusers", "ModelMixin"):
        return cls.from_pretrained(path, torch_dtype=dtype, local_files_only=True).eval()
    raise ValueError(f"LTX-2 component {name!r} has class {cls.__name__}, which takeone cannot load")


def component_class(folder: Path) -> Any:
    """The class of the component in ``folder``: as its repo's ``model_index.json`` names it
    (diffusers' own record of a pipeline's parts), else as the folder's config says
    (``_class_name`` for diffusers models and schedulers, ``architectures`` for transformers
    models), else a tokenizer class from ``tokenizer_config.json``."""
    index = folder.parent / "model_index.json"
    if index.is_file():
        entry = json.loads(index.read_text()).get(folder.name)
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry):
            return named_class(entry[0], entry[1])
    for config_name in ("config.json", "scheduler_config.json"):
        config = _json(folder / config_name)
        if isinstance(config.get("_class_name"), str):
            return named_class("diffusers", config["_class_name"])
        if config.get("architectures"):
            return named_class("transformers", str(config["architectures"][0]))
    if (folder / "tokenizer_config.json").is_file():
        return named_class("transformers", "AutoTokenizer")
    raise ValueError(f"cannot tell the class of the component in {folder.name}/ (no model_index.json entry, no config)")


def named_class(library: str, name: str) -> Any:
    """``name`` from ``library`` (see :data:`LIBRARIES`, :data:`PIPELINE_PACKAGES`); a config's
    ``_class_name`` says only "diffusers", so pipeline-local classes are looked up there too."""
    if library not in LIBRARIES + PIPELINE_PACKAGES:
        allowed = ", ".join(LIBRARIES + PIPELINE_PACKAGES)
        raise ValueError(f"a repo names class {name} from {library!r}; takeone loads classes of {allowed} only")
    modules = [library] if library == "transformers" else []
    if library == "diffusers":
        modules = ["diffusers", *(f"diffusers.pipelines.{package}" for package in PIPELINE_PACKAGES)]
    if library in PIPELINE_PACKAGES:
        modules = [f"diffusers.pipelines.{library}"]
    for module in modules:
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return found
    raise ValueError(f"{library} has no class {name}: the installed version may be too old")


def _subclass(cls: Any, library: str, base: str) -> bool:
    return isinstance(cls, type) and issubclass(cls, getattr(importlib.import_module(library), base))


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}
