"""The streamed LTX-2 decode and the overlapped delivery, on tiny random-weight models.

The reference for every streamed video is the pipeline's own decode: the same job run with
its last stage asked for ``output_type="pt"`` (the model's ``_stage`` is wrapped to switch
that one argument and ``_to_video`` to hand back the raw output), quantized as takeone always
did. The streamed frames must equal it exactly: the same operations run in the same order on
the same tensors, only one tile at a time.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.engine.render import QUEUE_CHUNKS, deliver, render
from takeone.models.base import Frames, FrameStream, Video
from takeone.models.family_helpers import frames_to_uint8
from takeone.models.loader import load_video_model
from takeone.models.ltx2.decode import TemporalTiles
from takeone.models.ltx2.model import Ltx2Model, audio_to_numpy
from takeone.models.ltx2.tiny import build_tiny_components
from takeone.models.recipe import Profile, Recipe
from takeone.models.registry import get_profile
from tests.mp4probe import probe
from tests.unit.models.callbacks import ignore, never

CPU = torch.device("cpu")
FOX = VideoTask(kind="t2v", prompt="a fox", seconds=10, audio=True, seed=4)


@pytest.fixture(scope="module")
def model() -> Ltx2Model:
    """A private tiny model: the tests change its VAE's tile sizes."""
    loaded = load_video_model("tiny", "cpu")
    assert isinstance(loaded, Ltx2Model)
    return loaded


@pytest.fixture
def vae(model: Ltx2Model) -> Iterator[Any]:
    """The model's VAE, its tile sizes put back after the test."""
    vae = model.components["vae"]
    sizes = {name: getattr(vae, name) for name in vars(vae) if name.startswith("tile_sample_")}
    yield vae
    for name, value in sizes.items():
        setattr(vae, name, value)


@pytest.fixture
def short_tiles(vae: Any) -> Any:
    """16-frame tiles with stride 8 (diffusers' default), so a tiny 33-frame clip spans 5
    temporal tiles; the model's own are the reference's 64 frames."""
    vae.enable_tiling(tile_sample_min_num_frames=16, tile_sample_stride_num_frames=8)
    return vae


@pytest.fixture
def recipe() -> Recipe:
    """Tiny 10 s: 33 frames of 160x96 (5 x 3 x 5 latents), audio on."""
    return get_profile("tiny").recipe_for(FOX)


def pipeline_decode(
    model: Ltx2Model, request: VideoTask, recipe: Recipe, monkeypatch: pytest.MonkeyPatch
) -> tuple[Frames, np.ndarray[Any, Any]]:
    """The job decoded by the pipeline itself (``output_type="pt"`` on its last stage)."""
    stages = len(recipe.stage_steps)
    calls: list[int] = []
    original = model._stage

    def stage(pipe: Any, arguments: dict[str, Any]) -> Any:
        calls.append(1)
        last = len(calls) == stages
        return original(pipe, {**arguments, "output_type": "pt"} if last else arguments)

    with monkeypatch.context() as patch:
        patch.setattr(model, "_stage", stage)
        patch.setattr(model, "_to_video", lambda output, *_: output)
        output: Any = model.generate(request, recipe, ignore, never)
    return frames_to_uint8(output.frames[0]), audio_to_numpy(output.audio[0])


def streamed(model: Ltx2Model, request: VideoTask, recipe: Recipe) -> tuple[list[Frames], Video]:
    video = model.generate(request, recipe, ignore, never)
    assert isinstance(video.frames, FrameStream)
    return list(video.frames), video


def assert_same_as_pipeline(
    model: Ltx2Model, recipe: Recipe, monkeypatch: pytest.MonkeyPatch, request: VideoTask = FOX
) -> list[Frames]:
    chunks, video = streamed(model, request, recipe)
    frames, audio = pipeline_decode(model, request, recipe, monkeypatch)
    assert video.frame_count == len(frames) == recipe.gen_frames
    assert all(chunk.dtype == np.uint8 and chunk.flags.c_contiguous for chunk in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), frames)
    assert video.audio is not None
    np.testing.assert_array_equal(video.audio, audio)
    return chunks


# --- equal to the pipeline's own decode ------------------------------------------------


def test_untiled_decode_equals_the_pipeline(model: Ltx2Model, recipe: Recipe, monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass, handed over in chunks of at most 8 frames."""
    assert not recipe.vae_tiling
    chunks = assert_same_as_pipeline(model, recipe, monkeypatch)
    assert [len(chunk) for chunk in chunks] == [8, 8, 8, 8, 1]


@pytest.mark.parametrize(
    ("size", "stride", "chunk_sizes"),
    [
        (16, 8, [9, 8, 8, 8]),  # 5 tiles: 3, 3, 3, 2 and 1 latent frames
        (24, 16, [17, 16]),  # 3 tiles: 4, 3 and 1 latent frames
        (24, 8, [9, 8, 8, 8]),  # tile 3 blends with frames of tile 2 that were blended themselves
    ],
)
def test_temporally_tiled_decode_equals_the_pipeline(
    model: Ltx2Model,
    vae: Any,
    recipe: Recipe,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    stride: int,
    chunk_sizes: list[int],
) -> None:
    """Tiles shorter than a full one at the end (whose blends overlap) included."""
    vae.enable_tiling(tile_sample_min_num_frames=size, tile_sample_stride_num_frames=stride)
    tiles = TemporalTiles.of(vae)
    assert len(range(0, 5, tiles.latent_stride)) >= 3
    chunks = assert_same_as_pipeline(model, dataclasses.replace(recipe, vae_tiling=True), monkeypatch)
    assert [len(chunk) for chunk in chunks] == chunk_sizes


def test_models_decode_in_the_references_tiles(ltx2_model: Ltx2Model) -> None:
    """Lightricks' current helpers: 768 px tiles overlapping by 64, 80-frame tiles overlapping
    by 24 (diffusers: 16 / 8)."""
    vae = ltx2_model.components["vae"]
    assert TemporalTiles.of(vae) == TemporalTiles(latent_size=10, latent_stride=7, stride=56, blend=24)
    space = (vae.tile_sample_min_width, vae.tile_sample_stride_width, vae.tile_sample_min_height,
             vae.tile_sample_stride_height)
    assert space == (768, 704, 768, 704)


def test_a_long_clip_decodes_in_80_frame_tiles_equal_to_the_pipeline(
    model: Ltx2Model, recipe: Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """97 frames (13 latent frames) tiled: two 80-frame tiles, handed over as 57 + 40 frames."""
    long = dataclasses.replace(recipe, gen_frames=97, vae_tiling=True)
    chunks = assert_same_as_pipeline(model, long, monkeypatch)
    assert [len(chunk) for chunk in chunks] == [57, 40]


def test_spatial_tiles_inside_temporal_tiles_equal_the_pipeline(
    model: Ltx2Model, vae: Any, recipe: Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tiles across (4 and 2 latents, blended over 32 pixels) inside 16-frame tiles.

    The tiny VAE cannot decode a tile one latent wide, so rows stay whole (3 latents)."""
    vae.enable_tiling(
        tile_sample_min_height=96,
        tile_sample_min_width=128,
        tile_sample_stride_height=96,
        tile_sample_stride_width=96,
        tile_sample_min_num_frames=16,
        tile_sample_stride_num_frames=8,
    )
    assert_same_as_pipeline(model, dataclasses.replace(recipe, vae_tiling=True), monkeypatch)


def test_two_stage_decode_equals_the_pipeline(
    ltx2_model: Ltx2Model, scaled_ltx2: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ltx-2 recipe (stage 1, upsampler, stage 2), forced into temporal tiles."""
    request = dataclasses.replace(FOX, seconds=10)
    recipe = dataclasses.replace(scaled_ltx2.recipe_for(request), vae_tiling=True)
    assert recipe.stage_steps == (8, 3)
    assert_same_as_pipeline(ltx2_model, recipe, monkeypatch, request)


def test_timestep_conditioned_vae_decodes_like_the_pipeline(
    recipe: Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decode-time noise path: latents are normalized again to mix in noise, so float32
    rounding may move a pixel by one step; the job's generator draws the same noise."""
    from takeone.models.ltx2.tiny import build_tiny_components
    from tests.support.tiny_ltx2 import tiny_video_vae

    conditioned = Ltx2Model({**build_tiny_components(), "vae": tiny_video_vae(timestep_conditioning=True)}, CPU)
    chunks, video = streamed(conditioned, FOX, recipe)
    frames, audio = pipeline_decode(conditioned, FOX, recipe, monkeypatch)
    difference = np.abs(np.concatenate(chunks).astype(np.int16) - frames.astype(np.int16))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    assert video.audio is not None
    np.testing.assert_array_equal(video.audio, audio)


def test_each_tile_is_handed_over_before_the_next_is_decoded(
    model: Ltx2Model, short_tiles: Any, recipe: Recipe
) -> None:
    vae = short_tiles
    """Decoder runs and chunks alternate: nothing waits for the whole clip."""
    events: list[str] = []
    handle = vae.decoder.register_forward_hook(lambda *_: events.append("decode"))
    try:
        video = model.generate(FOX, dataclasses.replace(recipe, vae_tiling=True), ignore, never)
        for _chunk in video.chunks():
            events.append("chunk")
    finally:
        handle.remove()
    # 5 tiles; the last (one latent frame) adds no frames.
    assert events == ["decode", "chunk"] * 4 + ["decode"]


# --- errors and cancellation in the stream -----------------------------------------------


def test_cancel_between_chunks_raises_job_cancelled_and_leaves_nothing(
    model: Ltx2Model, short_tiles: Any, recipe: Recipe, tmp_path: Path
) -> None:
    profile = get_profile("tiny")
    tiled = dataclasses.replace(profile, vae_tiling_above=0)
    polls: list[int] = []
    events: list[str] = []
    vae = model.components["vae"]
    handle = vae.decoder.register_forward_hook(lambda *_: events.append("decode"))

    def cancel_after_two_tiles() -> bool:
        polls.append(1)
        return events.count("decode") >= 2

    try:
        with pytest.raises(JobCancelled):
            render(model, tiled, FOX, tmp_path / "out.mp4", ignore, cancel_after_two_tiles)
    finally:
        handle.remove()
    assert events == ["decode", "decode"]
    assert_nothing_left(tmp_path)


def test_decode_failure_mid_stream_becomes_generation_failed_and_leaves_nothing(
    model: Ltx2Model, short_tiles: Any, recipe: Recipe, tmp_path: Path
) -> None:
    vae = model.components["vae"]
    runs: list[int] = []

    def fail_on_third(*_: Any) -> None:
        runs.append(1)
        if len(runs) == 3:
            raise RuntimeError("decoder broke\nsecond line")

    handle = vae.decoder.register_forward_hook(fail_on_third)
    try:
        video = model.generate(FOX, dataclasses.replace(recipe, vae_tiling=True), ignore, never)
        with pytest.raises(GenerationFailed, match=r"LTX-2 t2v decode failed: RuntimeError: decoder broke$"):
            deliver(video, recipe, tmp_path / "out.mp4")
    finally:
        handle.remove()
    assert_nothing_left(tmp_path)


def test_out_of_memory_while_decoding_is_reported_as_such(model: Ltx2Model, recipe: Recipe) -> None:
    from takeone.core.errors import OutOfMemory

    vae = model.components["vae"]

    def allocation_failure(*_: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = vae.decoder.register_forward_hook(allocation_failure)
    try:
        video = model.generate(FOX, recipe, ignore, never)
        with pytest.raises(OutOfMemory):
            video.all_frames()
    finally:
        handle.remove()


# --- the overlapped delivery ----------------------------------------------------------------


def synthetic(chunks: int, size: int, live: list[int], peak: list[int], fail_at: int | None = None) -> Video:
    """A stream of fresh 64x48 chunks that counts how many exist at once."""

    def forget() -> None:
        live[0] -= 1

    def frames() -> Generator[Frames, None, None]:
        for index in range(chunks):
            if index == fail_at:
                raise GenerationFailed("decode failed mid-stream")
            chunk = np.full((size, 48, 64, 3), index * 7 % 256, dtype=np.uint8)
            live[0] += 1
            peak[0] = max(peak[0], live[0])
            weakref.finalize(chunk, forget)
            yield chunk

    return Video(FrameStream(chunks * size, frames()), fps=24.0, audio=None, sample_rate=0, seed=0)


def delivery_recipe(frames: int) -> Recipe:
    recipe = get_profile("tiny").recipe_for(VideoTask(kind="t2v", prompt="a fox", seed=1))
    return dataclasses.replace(recipe, output_frames=frames, output_width=64, output_height=48, audio=False)


def test_delivery_holds_a_few_chunks_not_the_clip(tmp_path: Path) -> None:
    live, peak = [0], [0]
    deliver(synthetic(40, 3, live, peak), delivery_recipe(120), tmp_path / "out.mp4")
    assert probe((tmp_path / "out.mp4").read_bytes()).frames == 120
    assert live[0] == 0 and peak[0] <= QUEUE_CHUNKS + 3  # queued, being encoded, being decoded


def test_a_stream_failure_stops_the_encoder_and_leaves_nothing(tmp_path: Path) -> None:
    live, peak = [0], [0]
    with pytest.raises(GenerationFailed, match="decode failed mid-stream"):
        deliver(synthetic(40, 3, live, peak, fail_at=10), delivery_recipe(120), tmp_path / "out.mp4")
    assert_nothing_left(tmp_path)


def test_an_encoder_failure_stops_the_stream_and_leaves_nothing(tmp_path: Path) -> None:
    """A malformed chunk fails in the encoder thread; the decoder stops and is closed."""
    state = {"produced": 0, "closed": False}

    def frames() -> Generator[Frames, None, None]:
        try:
            for index in range(40):
                state["produced"] += 1
                shape = (2, 48, 64, 3) if index != 3 else (2, 48, 64, 4)
                yield np.zeros(shape, dtype=np.uint8)
        finally:
            state["closed"] = True

    video = Video(FrameStream(80, frames()), fps=24.0, audio=None, sample_rate=0, seed=0)
    with pytest.raises(ValueError, match="a frame must be"):
        deliver(video, delivery_recipe(80), tmp_path / "out.mp4")
    assert state["closed"] and state["produced"] < 40
    assert_nothing_left(tmp_path)


def test_a_stream_with_fewer_frames_than_announced_fails(tmp_path: Path) -> None:
    def frames() -> Generator[Frames, None, None]:
        yield np.zeros((4, 48, 64, 3), dtype=np.uint8)

    video = Video(FrameStream(9, frames()), fps=24.0, audio=None, sample_rate=0, seed=0)
    with pytest.raises(GenerationFailed, match="announced 9 frames but produced 4"):
        deliver(video, delivery_recipe(24), tmp_path / "out.mp4")
    assert_nothing_left(tmp_path)


def test_a_whole_array_is_delivered_in_chunks(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (17, 48, 64, 3), dtype=np.uint8)
    video = Video(frames, fps=24.0, audio=None, sample_rate=0, seed=0)
    assert video.frame_count == 17 and [len(c) for c in video.chunks()] == [8, 8, 1]
    deliver(video, delivery_recipe(121), tmp_path / "out.mp4")
    assert probe((tmp_path / "out.mp4").read_bytes()).frames == 121


def assert_nothing_left(folder: Path) -> None:
    """No file (final or temporary) and no encoder thread."""
    assert list(folder.iterdir()) == []
    assert not [thread for thread in threading.enumerate() if thread.name == "takeone-encoder"]




def test_bf16_decode_equals_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Served in bf16, as on a GPU: the latents come back in float32 and are rounded to the
    bf16 prompt embeddings' dtype before decoding, by the pipeline and by takeone alike."""
    components = build_tiny_components()
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.to(torch.bfloat16)
    bf16 = Ltx2Model(components, CPU)
    assert bf16.components["text_encoder"].dtype == torch.bfloat16
    assert_same_as_pipeline(bf16, get_profile("tiny").recipe_for(FOX), monkeypatch)
