"""Per-job LoRAs on the tiny model on CPU: real files added through the CLI, real MP4s.

Exactness: a job without LoRAs after LoRA jobs must give the base video *bit for bit* (the
same MP4 bytes and decoded frames, tolerance 0): adapters are disabled, never fused, so PEFT's
layers return their base layer's output itself and no arithmetic has to be undone. A LoRA at
scale 0 is held to the same standard (PEFT adds ``0 * delta``, an exact zero for finite
weights). The tiny model is deterministic on CPU for a given seed (checked by the first
assertion), so any difference is the adapters'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from takeone.backends.local_blobs import LocalBlobStore
from takeone.cli.main import main
from takeone.core.loras import LoraUse
from takeone.core.task import VideoTask
from takeone.engine.loras import LoraSwitcher
from tests.support.loras import make_lora


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, LoraSwitcher, Path]]:
    from takeone.models.loader import load_video_model

    root = tmp_path_factory.mktemp("loras")
    data = root / "data"
    for name, layout, seed in (("alpha", "diffusers", 1), ("beta", "kohya", 2), ("gamma", "diffusers", 3)):
        path = make_lora(root / f"{name}.safetensors", layout, seed=seed)
        assert main(["loras", "add", name, str(path), "--profile", "tiny", "--data-dir", str(data)]) == 0
    model = load_video_model("tiny", "cpu")
    switcher = LoraSwitcher(model, LocalBlobStore(data, b""), root / "scratch", host_slots=2, device_slots=2)
    yield model, switcher, root


def _video(rig: tuple[object, LoraSwitcher, Path], name: str, *uses: LoraUse) -> tuple[str, np.ndarray]:
    from takeone.engine.render import render
    from takeone.models.tiny.profile import TINY

    model, switcher, root = rig
    switcher.activate(uses)
    out = root / f"{name}.mp4"
    task = VideoTask(kind="t2v", tier="fast", seed=7, prompt="a fox", loras=uses)
    render(model, TINY, task, out, lambda _d, _t: None, lambda: False)  # type: ignore[arg-type]
    with av.open(str(out)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return hashlib.sha256(out.read_bytes()).hexdigest(), frames


def test_loras_change_combine_and_leave_the_base_exact(rig: tuple[object, LoraSwitcher, Path]) -> None:
    base, base_frames = _video(rig, "base")
    assert _video(rig, "base-again")[0] == base  # deterministic: differences below are the LoRAs'
    alpha, alpha_frames = _video(rig, "alpha", LoraUse("alpha", 1.0))
    assert alpha != base and np.abs(alpha_frames.astype(int) - base_frames).mean() > 1.0
    assert _video(rig, "zero", LoraUse("alpha", 0.0))[0] == base
    beta, _ = _video(rig, "beta", LoraUse("beta", 1.0))  # the kohya-layout file
    both, _ = _video(rig, "both", LoraUse("alpha", 1.0), LoraUse("beta", 1.0))
    assert len({base, alpha, beta, both}) == 4
    after, after_frames = _video(rig, "after")
    assert after == base and np.array_equal(after_frames, base_frames)
    half, _ = _video(rig, "half", LoraUse("alpha", 0.5))
    assert half not in (base, alpha)


def test_lru_evicts_and_reloads_the_same_adapter(rig: tuple[object, LoraSwitcher, Path]) -> None:
    _, switcher, _ = rig
    first, _ = _video(rig, "g1", LoraUse("gamma", 1.0))
    _video(rig, "a1", LoraUse("alpha", 1.0))
    _video(rig, "b1", LoraUse("beta", 1.0))  # 2 device slots: gamma was evicted
    assert "gamma" not in switcher.device and len(switcher.device) == 2 and len(switcher.host) <= 2
    again, _ = _video(rig, "g2", LoraUse("gamma", 1.0))
    assert again == first


def test_host_memory_keeps_more_loras_than_the_transformers(rig: tuple[object, LoraSwitcher, Path]) -> None:
    """Two levels: with 3 host slots and 1 adapter slot, a LoRA evicted from the transformer
    is loaded again from host memory, not read again from the library."""
    from takeone.engine.loras import adaptable_transformers

    model, plain, root = rig
    for module in adaptable_transformers(model):
        for name in list(getattr(module, "peft_config", {}) or {}):
            module.delete_adapters(name)  # a fresh model state for this switcher
    plain.device.clear()
    reads: list[str] = []

    class CountingBlobs(LocalBlobStore):
        def fetch_to(self, key: str, path: Path) -> None:
            reads.append(key.rsplit("/", 1)[-1])
            super().fetch_to(key, path)

    switcher = LoraSwitcher(model, CountingBlobs(root / "data", b""), root / "two-level",
                            host_slots=3, device_slots=1)
    two_level = (model, switcher, root)
    first, _ = _video(two_level, "h-a", LoraUse("alpha", 1.0))
    _video(two_level, "h-b", LoraUse("beta", 1.0))
    assert list(switcher.device) == ["beta"] and list(switcher.host) == ["alpha", "beta"]
    assert _video(two_level, "h-a2", LoraUse("alpha", 1.0))[0] == first
    _video(two_level, "h-g", LoraUse("gamma", 1.0))
    _video(two_level, "h-b2", LoraUse("beta", 1.0))
    assert reads == ["alpha.safetensors", "beta.safetensors", "gamma.safetensors"]  # each read once
    _video(two_level, "h-a3")  # the base: adapters disabled, nothing read
    assert list(switcher.host) == ["alpha", "gamma", "beta"] and len(reads) == 3
    for module in adaptable_transformers(model):
        for name in list(getattr(module, "peft_config", {}) or {}):
            module.delete_adapters(name)  # leave the model as the other tests expect it


def test_hotswap_slots_keep_the_base_exact(rig: tuple[object, LoraSwitcher, Path]) -> None:
    """The compiled-model mode (uncompiled here: the weights logic is the same): LoRAs are
    swapped into fixed slots with their scale folded in; unused slots hold zeros."""
    from takeone.engine.loras import HotswapSwitcher

    model, plain, root = rig
    base, _ = _video(rig, "hs-base")
    for module in __import__("takeone.engine.loras", fromlist=["x"]).adaptable_transformers(model):
        for name in list(getattr(module, "peft_config", {}) or {}):
            module.delete_adapters(name)  # a fresh model state for the slots
    plain.device.clear()
    swap = HotswapSwitcher(model, plain.blobs, root / "hs", "tiny", device_slots=2)
    hs_rig = (model, swap, root)
    alpha, _ = _video(hs_rig, "hs-alpha", LoraUse("alpha", 1.0))
    assert alpha != base and swap.slots.count(None) == 1
    assert _video(hs_rig, "hs-zero", LoraUse("alpha", 0.0))[0] == base
    _video(hs_rig, "hs-two", LoraUse("beta", 1.0), LoraUse("gamma", 0.5))
    assert _video(hs_rig, "hs-after")[0] == base and swap.slots == [None, None]
    assert _video(hs_rig, "hs-alpha-again", LoraUse("alpha", 1.0))[0] == alpha


def test_a_replaced_lora_is_read_again(rig: tuple[object, LoraSwitcher, Path]) -> None:
    _, switcher, root = rig
    before, _ = _video(rig, "r1", LoraUse("alpha", 1.0))
    other = make_lora(root / "alpha2.safetensors", seed=11)
    data = str(root / "data")
    assert main(["loras", "add", "alpha", str(other), "--profile", "tiny", "--data-dir", data, "--replace"]) == 0
    after, _ = _video(rig, "r2", LoraUse("alpha", 1.0))
    assert after != before


def test_a_compiled_worker_hot_swaps_loras_without_recompiling(rig: tuple[object, LoraSwitcher, Path]) -> None:
    """A worker whose transformer blocks are compiled (dynamo's ``eager`` backend on CPU: the
    same graph capture and guards as on a GPU, without inductor's code generation) gets the
    hot-swap switcher; once its slots exist (the first LoRA job, the one recompile), other
    LoRAs, other scales and no LoRA at all add no compiled graph (dynamo's count; the plain
    switcher's ``set_adapters`` and ``disable_lora`` add graphs at every switch)."""
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters

    from takeone.engine.loras import HotswapSwitcher, make_switcher
    from takeone.models.ltx2.model import Ltx2Model
    from takeone.models.ltx2.tiny import build_tiny_components
    from takeone.models.recipe import Speedups

    _, plain, root = rig
    torch._dynamo.reset()
    model = Ltx2Model(build_tiny_components(), torch.device("cpu"),
                      speedups=Speedups(compile="regional", compile_backend="eager"))
    assert model.speedup_report.compiled
    switcher = make_switcher(model, plain.blobs, root / "compiled", "tiny")
    assert isinstance(switcher, HotswapSwitcher)
    compiled = (model, switcher, root)
    base, _ = _video(compiled, "c-base")
    alpha, _ = _video(compiled, "c-alpha", LoraUse("alpha", 1.0))  # the slots are made: one recompile
    assert len(switcher.slots) == 4  # the most a request may name: every slot runs in every job
    graphs = counters["stats"]["unique_graphs"]
    two, _ = _video(compiled, "c-two", LoraUse("beta", 1.0), LoraUse("gamma", 0.5))
    after, _ = _video(compiled, "c-after")
    again, _ = _video(compiled, "c-alpha-again", LoraUse("alpha", 1.0))
    assert counters["stats"]["unique_graphs"] == graphs  # set_adapters / disable_lora: 2 more each
    assert alpha != base and two not in (base, alpha)
    assert after == base and again == alpha
