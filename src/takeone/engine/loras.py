"""Per-job LoRAs on a warm worker: loaded once, kept, switched by adapter weights, never fused.

Two LRUs: up to ``host_slots`` LoRA state dicts in host memory (read from the blob store once)
and up to ``device_slots`` adapters loaded into the transformers (diffusers'
``load_lora_adapter``). A job activates its set with ``set_adapters(names, weights)``; a job
without LoRAs disables them (``disable_lora``), so PEFT's layers return the base layer's
output itself: the base model's video, bit for bit. Nothing is ever fused into the base
weights, so no switch has to undo arithmetic.

Example::

    switcher = LoraSwitcher(model, blobs, scratch)
    switcher.activate((LoraUse("anime", 0.8),))   # before the job's render
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from takeone.core.blobs import BlobStore
from takeone.core.errors import GenerationFailed, NotFound
from takeone.core.loras import LoraUse, file_key

if TYPE_CHECKING:
    import torch

log = logging.getLogger("takeone.worker")
HOST_SLOTS = 8
DEVICE_SLOTS = 4
_TRANSFORMER_NAMES = ("transformer", "transformer_full", "transformer_2")


def adaptable_transformers(model: object) -> list[Any]:
    """The model's transformers that take adapters (each once, pipelines sharing them or not)."""
    found: dict[int, Any] = {}
    components = getattr(model, "components", None) or {}
    candidates = [components.get(name) for name in _TRANSFORMER_NAMES]
    for pipe in (getattr(model, "pipelines", None) or {}).values():  # Wan: one pipeline per task kind
        candidates += [getattr(pipe, name, None) for name in _TRANSFORMER_NAMES]
    for module in candidates:
        if module is not None and hasattr(module, "load_lora_adapter"):
            found.setdefault(id(module), module)
    return list(found.values())


class LoraSwitcher:
    """Which adapters are resident, and activating a job's set on the model's transformers."""

    def __init__(self, model: object, blobs: BlobStore, scratch: Path,
                 host_slots: int = HOST_SLOTS, device_slots: int = DEVICE_SLOTS) -> None:
        self.model = model
        self.blobs = blobs
        self.scratch = scratch
        self.host_slots = max(1, host_slots)
        self.device_slots = max(1, device_slots)
        self.host: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self.device: OrderedDict[str, None] = OrderedDict()
        self.stamps: dict[str, float] = {}  # when each cached LoRA's file was written
        self.last_switch_s = 0.0

    def activate(self, uses: Sequence[LoraUse]) -> float:
        """Make ``uses`` the active set (empty: the base model); the seconds it took."""
        started = time.perf_counter()
        if len(uses) > self.device_slots:
            raise GenerationFailed(f"{len(uses)} LoRAs asked; this worker keeps {self.device_slots} loaded")
        transformers = adaptable_transformers(self.model)
        if uses and not transformers:
            raise GenerationFailed("this model's transformers take no LoRA adapters")
        if not uses:
            for module in transformers:
                if getattr(module, "peft_config", None):
                    module.disable_lora()
        else:
            names = [use.name for use in uses]
            for name in names:
                self._drop_if_replaced(name)
                self._load(name, transformers, keep=names)
            for module in transformers:
                module.enable_lora()
                module.set_adapters(names, weights=[use.scale for use in uses])
        self.last_switch_s = time.perf_counter() - started
        return self.last_switch_s

    def _drop_if_replaced(self, name: str) -> None:
        """A LoRA re-added under the same name (``loras add --replace``) is read again."""
        info = self.blobs.stat(file_key(name))
        if info is None:
            raise GenerationFailed(f"the LoRA {name!r} is no longer in the library")
        if self.stamps.get(name, info.modified) != info.modified:
            self.forget(name)
        self.stamps[name] = info.modified

    def _load(self, name: str, transformers: list[Any], keep: list[str]) -> None:
        missing = [m for m in transformers if name not in (getattr(m, "peft_config", None) or {})]
        if name in self.device and not missing:
            self.device.move_to_end(name)
            return
        while len(self.device) >= self.device_slots:
            self._unload_oldest(transformers, keep)
        state = self._state(name)
        for module in missing:
            # A copy per load: diffusers pops the keys it consumes from the dict it is given.
            module.load_lora_adapter(dict(state), adapter_name=name, prefix="transformer")
        self.device[name] = None

    def _unload_oldest(self, transformers: list[Any], keep: list[str]) -> None:
        victim = next((n for n in self.device if n not in keep), None)
        if victim is None:
            raise GenerationFailed("no adapter slot is free for this job's LoRAs")
        for module in transformers:
            if victim in (getattr(module, "peft_config", None) or {}):
                module.delete_adapters(victim)
        del self.device[victim]

    def _state(self, name: str) -> dict[str, torch.Tensor]:
        if name in self.host:
            self.host.move_to_end(name)
            return self.host[name]
        from safetensors.torch import load_file

        path = self.scratch / f"lora-{name}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.blobs.fetch_to(file_key(name), path)
        except NotFound:
            raise GenerationFailed(f"the LoRA {name!r} is no longer in the library") from None
        try:
            state = load_file(str(path))
        finally:
            path.unlink(missing_ok=True)
        self.host[name] = state
        while len(self.host) > self.host_slots:
            self.host.popitem(last=False)
        return state

    def forget(self, name: str) -> None:
        """Drop a LoRA from both LRUs (e.g. after it was replaced in the library)."""
        self.host.pop(name, None)
        if name in self.device:
            for module in adaptable_transformers(self.model):
                if name in (getattr(module, "peft_config", None) or {}):
                    module.delete_adapters(name)
            del self.device[name]
