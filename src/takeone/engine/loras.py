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
from takeone.core.loras import MAX_LORAS, LoraUse, file_key

if TYPE_CHECKING:
    import torch

log = logging.getLogger("takeone.worker")
HOST_SLOTS = 16  # K: LoRAs kept in host memory, so one evicted from the transformers is not read again
DEVICE_SLOTS = 8  # M: adapters kept loaded in the transformers (inactive ones cost memory, not time)
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

    def _transformers_for(self, uses: Sequence[LoraUse]) -> list[Any]:
        """The model's transformers that take adapters; an error if ``uses`` cannot be served."""
        if len(uses) > self.device_slots:
            raise GenerationFailed(f"{len(uses)} LoRAs asked; this worker keeps {self.device_slots} loaded")
        transformers = adaptable_transformers(self.model)
        if uses and not transformers:
            raise GenerationFailed("this model's transformers take no LoRA adapters")
        return transformers

    def activate(self, uses: Sequence[LoraUse]) -> float:
        """Make ``uses`` the active set (empty: the base model); the seconds it took."""
        started = time.perf_counter()
        transformers = self._transformers_for(uses)
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


class HotswapSwitcher(LoraSwitcher):
    """For compiled transformers: ``device_slots`` fixed adapters (by default the most a request
    may name: every slot runs in every job, so more would cost time and keep nothing) whose
    weights are swapped in place (diffusers' ``enable_lora_hotswap`` + ``load_lora_adapter(..., hotswap=True)``), so a
    new LoRA, a new scale or no LoRA at all never changes the compiled graph.

    ``set_adapters`` and ``disable_lora`` would each recompile (they change what the graph's
    guards see), so this mode uses neither: a LoRA's scale is folded into its ``lora_B``, and a
    slot a job does not use holds zeros (its term adds exact zeros: the base output). The slots
    are made at the first LoRA job (one recompile, then none) over the union of the modules the
    library's LoRAs for this profile adapt, at the library's highest rank; a LoRA added later
    that adapts other modules or has a higher rank rebuilds the slots (one more recompile).
    """

    def __init__(self, model: object, blobs: BlobStore, scratch: Path, profile: str,
                 host_slots: int = HOST_SLOTS, device_slots: int = MAX_LORAS) -> None:
        super().__init__(model, blobs, scratch, host_slots, device_slots)
        self.profile = profile
        self.slots: list[tuple[str, float] | None] = []  # what each slot holds (None: zeros)
        self.targets: tuple[str, ...] = ()
        self.rank = 0

    def activate(self, uses: Sequence[LoraUse]) -> float:
        started = time.perf_counter()
        transformers = self._transformers_for(uses)
        for use in uses:
            self._drop_if_replaced(use.name)
        states = {use.name: self._state(use.name) for use in uses}
        if uses and not self._slots_fit(states):
            self._build_slots(transformers, states)
        if self.slots:
            self._assign(transformers, uses, states)
        self.last_switch_s = time.perf_counter() - started
        return self.last_switch_s

    def forget(self, name: str) -> None:
        super().forget(name)
        for i, held in enumerate(self.slots):
            if held is not None and held[0] == name:
                self.slots[i] = (f"{name} (replaced)", 0.0)  # matches no request: swapped out next

    def _slots_fit(self, states: dict[str, dict[str, torch.Tensor]]) -> bool:
        if not self.slots:
            return False
        for state in states.values():
            modules, rank = _modules_and_rank(state)
            if not set(modules) <= set(self.targets) or rank > self.rank:
                return False
        return True

    def _build_slots(self, transformers: list[Any], states: dict[str, dict[str, torch.Tensor]]) -> None:
        from takeone.core.loras import LoraCatalog

        library = [m for m in LoraCatalog(self.blobs).entries() if m.profile == self.profile]
        targets = {t for m in library for t in m.targets}
        rank = max([m.rank for m in library] + [1])
        for state in states.values():
            modules, lora_rank = _modules_and_rank(state)
            targets |= set(modules)
            rank = max(rank, lora_rank)
        log.info("LoRA hot-swap slots: %d over %d modules at rank %d (one recompile)",
                 self.device_slots, len(targets), rank)
        shapes = _linear_shapes(transformers[0], targets)
        for module in transformers:
            for slot in range(len(self.slots)):
                if f"slot{slot}" in (getattr(module, "peft_config", None) or {}):
                    module.delete_adapters(f"slot{slot}")
            module.enable_lora_hotswap(target_rank=rank, check_compiled="ignore")
            for slot in range(self.device_slots):
                module.load_lora_adapter(_zeros(shapes, rank), adapter_name=f"slot{slot}", prefix="transformer")
            module.enable_lora()  # every slot active at weight 1, once: a job changes weights only
            module.set_adapters([f"slot{slot}" for slot in range(self.device_slots)], [1.0] * self.device_slots)
        self.targets, self.rank = tuple(sorted(targets)), rank
        self.slots = [None] * self.device_slots

    def _assign(self, transformers: list[Any], uses: Sequence[LoraUse],
                states: dict[str, dict[str, torch.Tensor]]) -> None:
        wanted = [(use.name, use.scale) for use in uses]
        keep = [i for i, held in enumerate(self.slots) if held in wanted]
        plan: dict[int, tuple[str, float] | None] = {}
        free = [i for i in range(len(self.slots)) if i not in keep]
        for item in wanted:
            if item not in self.slots:
                plan[free.pop(0)] = item
        for i in free:
            if self.slots[i] is not None:
                plan[i] = None
        if not plan:
            return
        shapes = _linear_shapes(transformers[0], set(self.targets))
        for slot, held in plan.items():
            state = _zeros(shapes, self.rank) if held is None else _scaled(states[held[0]], held[1], shapes)
            for module in transformers:
                module.load_lora_adapter(dict(state), adapter_name=f"slot{slot}", prefix="transformer",
                                         hotswap=True)
            self.slots[slot] = held


def _modules_and_rank(state: dict[str, torch.Tensor]) -> tuple[list[str], int]:
    suffix = ".lora_A.weight"
    keys = [k for k in state if k.endswith(suffix)]
    modules = [k[len("transformer."):-len(suffix)] for k in keys]
    return modules, max((int(state[k].shape[0]) for k in keys), default=0)


def _linear_shapes(transformer: Any, targets: set[str]) -> dict[str, tuple[int, int]]:
    import torch

    shapes = {}
    for name, module in transformer.named_modules():
        base = getattr(module, "base_layer", module)
        if name in targets and isinstance(base, torch.nn.Linear):
            shapes[name] = (base.out_features, base.in_features)
    return shapes


def _zeros(shapes: dict[str, tuple[int, int]], rank: int) -> dict[str, torch.Tensor]:
    import torch

    state = {}
    for name, (out_features, in_features) in shapes.items():
        state[f"transformer.{name}.lora_A.weight"] = torch.zeros(rank, in_features)
        state[f"transformer.{name}.lora_B.weight"] = torch.zeros(out_features, rank)
    return state


def _scaled(state: dict[str, torch.Tensor], scale: float,
            shapes: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """``state`` with ``scale`` folded into ``lora_B``, and zeros for the slot's other modules."""
    _, rank = _modules_and_rank(state)
    out = _zeros(shapes, rank)
    for key, tensor in state.items():
        out[key] = tensor * scale if key.endswith(".lora_B.weight") else tensor
    return out


def make_switcher(model: object, blobs: BlobStore, scratch: Path, profile: str) -> LoraSwitcher:
    """Hot-swap slots for a compiled model (no recompile per LoRA), adapter switching otherwise."""
    report = getattr(model, "speedup_report", None)
    if report is not None and getattr(report, "compiled", False):
        return HotswapSwitcher(model, blobs, scratch, profile)
    return LoraSwitcher(model, blobs, scratch)
