"""Checking a LoRA file against a profile's transformer, and normalizing its key layout.

Two layouts are read:

- diffusers / PEFT: ``transformer.<module>.lora_A.weight`` and ``.lora_B.weight`` (the
  ``transformer.`` / ``base_model.model.`` prefix optional; ``lora_down`` / ``lora_up`` too),
  with an optional ``<module>.alpha``;
- kohya: ``lora_unet_<module with '.' as '_'>.lora_down.weight`` / ``.lora_up.weight`` and
  ``.alpha``.

Shapes come from the safetensors header and the transformer is built on the ``meta`` device
from its config, so no weights are loaded for the check. The stored file is always the
diffusers layout with ``alpha / rank`` folded into ``lora_B``, so a worker loads every LoRA
the same way (``load_lora_adapter(..., prefix="transformer")``) at scaling 1.

Example::

    report = inspect_lora(Path("anime.safetensors"), TINY, weights_root=None)
    data = normalized_bytes(Path("anime.safetensors"), report)
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from takeone.core.errors import InvalidRequest
from takeone.models.recipe import Profile

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
_PREFIXES = ("base_model.model.", "transformer.", "diffusion_model.", "model.")
_KOHYA_PREFIX = "lora_unet_"


@dataclass(frozen=True)
class LoraReport:
    """What a valid LoRA adapts: module -> (A key, B key, alpha key or None), rank, layout."""

    modules: dict[str, tuple[str, str, str | None]]
    rank: int
    layout: str


def check_file_kind(path: Path, field: str = "FILE") -> None:
    """Refuse anything but a safetensors file (a pickle can run code when loaded)."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidRequest(field, path.name, "is a pickle checkpoint; only .safetensors files are"
                                               " accepted (pickles can run code when loaded)")
    with path.open("rb") as handle:
        head = handle.read(9)
    size = path.stat().st_size
    # safetensors: an 8-byte little-endian header length, then that many bytes of JSON.
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > size - 8:
        raise InvalidRequest(field, path.name, "is not a safetensors file (only .safetensors is accepted)")


def header_shapes(path: Path, field: str = "FILE") -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the safetensors header alone."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100 * 1024 * 1024:
            raise InvalidRequest(field, path.name, "has an implausibly large safetensors header")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise InvalidRequest(field, path.name, "has an unreadable safetensors header") from None
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def transformer_linears(profile: Profile, weights_root: Path | None) -> dict[str, tuple[int, int]]:
    """Every linear module of the profile's transformer: name -> (out, in), built on ``meta``."""
    with torch.device("meta"):
        model = _meta_transformer(profile, weights_root)
    return {name: (m.out_features, m.in_features) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear)}


def _meta_transformer(profile: Profile, weights_root: Path | None) -> Any:
    if profile.family == "tiny":
        from takeone.models.ltx2.tiny import _transformer

        return _transformer()
    from takeone.models.weights import resolve

    folder = resolve(profile, weights_root)["transformer"]
    config = json.loads((folder / "config.json").read_text())
    import diffusers

    cls = getattr(diffusers, config["_class_name"])
    return cls.from_config(config)


def inspect_lora(path: Path, linears: dict[str, tuple[int, int]], profile_name: str,
                 field: str = "FILE") -> LoraReport:
    """The modules ``path`` adapts, checked by name and shape against ``linears``."""
    check_file_kind(path, field)
    shapes = header_shapes(path, field)
    kohya = {name.replace(".", "_"): name for name in linears}
    modules: dict[str, tuple[str, str, str | None]] = {}
    layouts: set[str] = set()
    for key in shapes:
        parsed = _parse_key(key)
        if parsed is None:
            continue
        raw, role, layout = parsed
        if role == "alpha":
            continue
        module = kohya.get(raw) if layout == "kohya" else raw
        if module is None or module not in linears:
            raise InvalidRequest(field, path.name, f"adapts {raw!r}, which {profile_name!r}'s transformer"
                                                   " does not have (a LoRA for another model?)")
        layouts.add(layout)
        a_key, b_key, alpha = modules.get(module, ("", "", None))
        if role == "A":
            a_key = key
        else:
            b_key = key
        stem = key.rsplit(".lora_", 1)[0]
        alpha = stem + ".alpha" if stem + ".alpha" in shapes else alpha
        modules[module] = (a_key, b_key, alpha)
    if not modules:
        raise InvalidRequest(field, path.name, "holds no LoRA weights in a known layout"
                                               " (diffusers/PEFT lora_A/lora_B or kohya lora_down/lora_up)")
    ranks = {_check_shapes(m, ab, shapes, linears[m], path.name, field) for m, ab in modules.items()}
    if len(ranks) != 1:
        raise InvalidRequest(field, path.name, f"mixes ranks {sorted(ranks)}; one rank per LoRA is served")
    return LoraReport(modules, ranks.pop(), "kohya" if layouts == {"kohya"} else "diffusers")


def _parse_key(key: str) -> tuple[str, str, str] | None:
    """(module, 'A'|'B'|'alpha', layout) of a tensor name, or None if it is not a LoRA tensor."""
    layout = "diffusers"
    if key.startswith(_KOHYA_PREFIX):
        key, layout = key[len(_KOHYA_PREFIX):], "kohya"
    else:
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
    for suffix, role in ((".lora_A.weight", "A"), (".lora_down.weight", "A"),
                         (".lora_B.weight", "B"), (".lora_up.weight", "B"), (".alpha", "alpha")):
        if key.endswith(suffix):
            return key[: -len(suffix)], role, layout
    return None


def _check_shapes(module: str, keys: tuple[str, str, str | None], shapes: dict[str, tuple[int, ...]],
                  linear: tuple[int, int], name: str, field: str) -> int:
    a_key, b_key, _alpha = keys
    if not a_key or not b_key:
        raise InvalidRequest(field, name, f"has only one half of the LoRA pair for {module!r}")
    out_features, in_features = linear
    a, b = shapes[a_key], shapes[b_key]
    if len(a) != 2 or len(b) != 2 or a[1] != in_features or b[0] != out_features or a[0] != b[1]:
        raise InvalidRequest(field, name, f"has shapes A{list(a)} B{list(b)} for {module!r}, which is"
                                          f" {in_features} -> {out_features}: a LoRA of another model")
    return a[0]


def normalized_state(path: Path, report: LoraReport) -> dict[str, torch.Tensor]:
    """The LoRA in the diffusers layout, ``alpha / rank`` folded into ``lora_B`` (float32)."""
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as handle:
        for module, (a_key, b_key, alpha_key) in sorted(report.modules.items()):
            a = handle.get_tensor(a_key).float()
            b = handle.get_tensor(b_key).float()
            if alpha_key is not None:
                b = b * (float(handle.get_tensor(alpha_key).float().item()) / report.rank)
            state[f"transformer.{module}.lora_A.weight"] = a.contiguous()
            state[f"transformer.{module}.lora_B.weight"] = b.contiguous()
    return state


def normalized_bytes(path: Path, report: LoraReport) -> bytes:
    from safetensors.torch import save

    return save(normalized_state(path, report), metadata={"format": "pt"})
