"""Shared fixtures for the model tests: one tiny LTX-2 per session and conditioning PNGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from takeone.models.base import VideoModel
from takeone.models.loader import load_video_model
from takeone.models.profiles import Profile, get_profile


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
