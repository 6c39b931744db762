"""Shared fixtures for the model tests: tiny models, tiny checkpoints on disk, conditioning PNGs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from takeone.models.base import VideoModel
from takeone.models.loader import load_video_model
from takeone.models.recipe import Profile
from takeone.models.registry import get_profile

# Tiny generation sizes for the real ltx-2 recipes: multiples of 64 (two-stage halves them to
# the tiny VAE's 32), 2-3 latent frames, so each clip costs a fraction of a second.
TINY_LTX2_SIZES = {"16:9": (128, 64, 128, 72), "9:16": (64, 128, 72, 128), "1:1": (64, 64, 72, 72)}
TINY_LTX2_FRAMES = {5: 9, 10: 17}


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models are latency-bound: on a shared 2-core machine a second intra-op thread made
    a tiny 8-step run take 5.5 s instead of 0.36 s (threads spinning against each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ltx2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache holding tiny random weights in every folder the ltx-2 profile reads."""
    from takeone.models.ltx2.tiny import write_tiny_checkpoints

    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    write_tiny_checkpoints(get_profile("ltx-2"), cache)
    return cache


@pytest.fixture(scope="session")
def scaled_ltx2() -> Profile:
    """The real ltx-2 profile (pipelines, stages, steps, sigmas, guidance) at tiny sizes; STG on
    block 1 because the tiny transformer has 2 layers."""
    return get_profile("ltx-2").scaled(TINY_LTX2_SIZES, TINY_LTX2_FRAMES, 32, {"stg_blocks": (1,)})


@pytest.fixture(scope="session")
def ltx2_model(scaled_ltx2: Profile, ltx2_cache: Path) -> VideoModel:
    """Loaded from the tiny checkpoints on disk by the real profile's loading code."""
    return load_video_model(scaled_ltx2, "cpu", weights=ltx2_cache)


@pytest.fixture(scope="session")
def tiny_model() -> VideoModel:
    """Built once: building is cheap, but importing and warming the pipelines is not."""
    return load_video_model("tiny", "cpu")


@pytest.fixture(scope="session")
def tiny_profile() -> Profile:
    return get_profile("tiny")


@pytest.fixture(scope="session")
def make_png(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Write a deterministic random RGB PNG of ``width`` x ``height`` and return its path."""
    folder = tmp_path_factory.mktemp("images")

    def make(width: int, height: int, seed: int = 0) -> str:
        path = folder / f"{width}x{height}-{seed}.png"
        if not path.exists():
            pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
        return str(path)

    return make


@pytest.fixture
def out_file(tmp_path: Path) -> Path:
    """Where a render writes, in a folder of its own so tests can check nothing else appears."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder / "video.mp4"
