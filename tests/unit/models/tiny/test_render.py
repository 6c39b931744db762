"""Every case of the tiny profile, rendered through the real LTX-2 pipelines to a real MP4.

Nothing is mocked: the tiny model runs text encoding, the joint audio-video transformer, both
VAEs and the vocoder, the render step resamples, and PyAV reads the file back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from takeone.core.errors import GenerationFailed, JobCancelled, OutOfMemory
from takeone.core.task import TaskKind, Tier, VideoTask
from takeone.engine.render import render, repeat_counts
from takeone.models.base import Video, VideoModel
from takeone.models.loader import load_video_model
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.tiny import AUDIO_SAMPLE_RATE, build_tiny_components
from takeone.models.recipe import Profile
from tests.unit.models.callbacks import ignore, never, whole

SIZES = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (144, 144)}
FRAMES = {5: 121, 10: 241}




@dataclass(frozen=True)
class Mp4:
    """What a test needs to know about an MP4, read back with PyAV."""

    width: int
    height: int
    fps: Fraction
    frames: int
    video_codec: str
    pix_fmt: str
    audio_codec: str | None
    audio_seconds: float


def probe(path: Path) -> Mp4:
    """Decode every frame (to count what a player would show) and describe both streams."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        decoded = sum(1 for _ in container.decode(video=0))
        return Mp4(
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=Fraction(video.average_rate or 0),
            frames=decoded,
            video_codec=video.codec_context.name,
            pix_fmt=str(video.codec_context.pix_fmt),
            audio_codec=audio.codec_context.name if audio else None,
            audio_seconds=float(audio.duration * audio.time_base) if audio and audio.duration else 0.0,
        )


@dataclass(frozen=True)
class Case:
    """One distinct tiny recipe to render."""

    kind: TaskKind
    tier: Tier
    aspect_ratio: str
    seconds: int
    audio: bool

    def __str__(self) -> str:
        audio = "audio" if self.audio else "silent"
        return f"{self.kind}-{self.tier}-{self.aspect_ratio}-{self.seconds}s-{audio}"

    def request(self, make_png: Callable[..., str], seed: int | None = 3) -> VideoTask:
        return VideoTask(
            kind=self.kind,
            tier=self.tier,
            prompt="a red fox runs through snow",
            negative_prompt="blurry",
            aspect_ratio=self.aspect_ratio,
            seconds=self.seconds,
            audio=self.audio,
            first_frame=make_png(400, 300, 1) if self.kind != "t2v" else None,
            last_frame=make_png(300, 400, 2) if self.kind == "flf2v" else None,
            seed=seed,
        )


def render_cases() -> list[Case]:
    """Every distinct recipe: tier x kind x aspect x duration, silent; plus t2v and i2v with
    audio on the standard tier (LTX-2 generates audio on every case; only the muxing differs)."""
    silent = [
        Case(kind, tier, aspect, seconds, False)
        for tier in ("fast", "standard", "quality")
        for kind in ("i2v", "flf2v")
        for aspect in SIZES
        for seconds in FRAMES
    ]
    standard = [
        Case(kind, "standard", aspect, seconds, audio)
        for kind in ("t2v", "i2v")
        for aspect in SIZES
        for seconds in FRAMES
        for audio in (False, True)
    ]
    return silent + standard + [
        Case("flf2v", "quality", "16:9", 5, True),
        Case("t2v", "fast", "1:1", 10, True),
        Case("t2v", "quality", "9:16", 5, False),
    ]


@pytest.mark.parametrize("case", render_cases(), ids=str)
def test_render_case(
    case: Case, tiny_model: VideoModel, tiny_profile: Profile, make_png: Callable[..., str], out_file: Path
) -> None:
    request = case.request(make_png)
    calls: list[tuple[int, int]] = []
    info = render(tiny_model, tiny_profile, request, out_file, lambda d, t: calls.append((d, t)), never)

    width, height = SIZES[case.aspect_ratio]
    frames = FRAMES[case.seconds]
    has_audio = case.audio
    mp4 = probe(out_file)
    assert (mp4.width, mp4.height, mp4.fps, mp4.frames) == (width, height, 24, frames)
    assert (mp4.video_codec, mp4.pix_fmt) == ("h264", "yuv420p")
    assert mp4.audio_codec == ("aac" if has_audio else None)
    if has_audio:
        assert mp4.audio_seconds == pytest.approx(frames / 24, abs=0.07)
    delivered = (info.width, info.height, info.frames, info.fps, info.has_audio)
    assert delivered == (width, height, frames, 24, has_audio)
    assert info.duration_s == pytest.approx(frames / 24) and info.seed == 3
    steps = tiny_profile.recipe_for(request).steps
    assert calls == [(done, steps + 1) for done in range(1, steps + 2)]  # + decode and MP4


def test_pipelines_share_one_set_of_weights(tiny_model: VideoModel) -> None:
    assert isinstance(tiny_model, Ltx2Model)
    pipes = list(tiny_model.pipelines.values())
    assert sorted(tiny_model.pipelines) == ["condition", "i2v", "t2v"]
    for name in ("transformer", "text_encoder", "vae", "audio_vae", "vocoder", "connectors"):
        assert all(getattr(pipe, name) is getattr(pipes[0], name) for pipe in pipes), name


@pytest.mark.parametrize(("field", "kind"), [("first_frame", "i2v"), ("first_frame", "flf2v"), ("last_frame", "flf2v")])
def test_conditioning_images_change_the_video(
    field: str, kind: TaskKind, tiny_model: VideoModel, tiny_profile: Profile, make_png: Callable[..., str]
) -> None:
    """The first (and last) frame really reach the pipeline: another image, another video."""
    base = Case(kind, "fast", "16:9", 5, False).request(make_png)
    other = dataclasses.replace(base, **{field: make_png(320, 180, 9)})
    first, second = (generate(tiny_model, tiny_profile, req).frames for req in (base, other))
    assert not np.array_equal(first, second)


def test_same_seed_same_video_and_other_seed_another(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", audio=True, seed=11)
    first, second = (generate(tiny_model, tiny_profile, request) for _ in range(2))
    other = generate(tiny_model, tiny_profile, dataclasses.replace(request, seed=12))
    assert np.array_equal(first.frames, second.frames)
    assert first.audio is not None and second.audio is not None and np.array_equal(first.audio, second.audio)
    assert not np.array_equal(first.frames, other.frames)


def test_unseeded_request_reports_a_seed_that_reproduces_it(
    tiny_model: VideoModel, tiny_profile: Profile
) -> None:
    request = VideoTask(kind="t2v", prompt="a fox")
    video = generate(tiny_model, tiny_profile, request)
    assert 0 <= video.seed < 2**31
    again = generate(tiny_model, tiny_profile, dataclasses.replace(request, seed=video.seed))
    assert np.array_equal(video.frames, again.frames)


def test_video_arrays_have_the_documented_types(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="fox", seconds=10, audio=True, seed=1)
    recipe = tiny_profile.recipe_for(request)
    video = whole(tiny_model.generate(request, recipe, ignore, never))
    assert video.frames.dtype == np.uint8
    assert video.frames.shape == (recipe.gen_frames, recipe.gen_height, recipe.gen_width, 3)
    assert video.fps == recipe.gen_fps and video.sample_rate == AUDIO_SAMPLE_RATE
    assert video.audio is not None and video.audio.dtype == np.float32 and video.audio.shape[0] == 2
    assert np.abs(video.audio).max() <= 1.0
    # The pipeline's audio spans gen_frames / gen_fps, i.e. the output duration (the encoder pads the rest).
    assert video.audio.shape[1] / video.sample_rate == pytest.approx(recipe.output_duration_s, abs=0.05)


def test_silent_recipe_returns_no_audio(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    video = generate(tiny_model, tiny_profile, request)
    assert video.audio is None


@pytest.mark.parametrize("cancel_after", [0, 1, 2])
def test_cancellation_raises_job_cancelled_and_writes_nothing(
    cancel_after: int, tiny_model: VideoModel, tiny_profile: Profile, out_file: Path
) -> None:
    calls: list[int] = []
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > cancel_after

    with pytest.raises(JobCancelled):
        render(tiny_model, tiny_profile, request, out_file, ignore, should_cancel)
    assert len(calls) == cancel_after + 1
    assert list(out_file.parent.iterdir()) == []
    # The model is left in a usable state: the next job renders normally.
    assert render(tiny_model, tiny_profile, request, out_file, ignore, never).frames == 121


def test_cancellation_after_generation_still_delivers_nothing(
    tiny_model: VideoModel, tiny_profile: Profile, out_file: Path
) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    steps = tiny_profile.recipe_for(request).steps
    polls: list[int] = []

    def cancel_once_done() -> bool:
        polls.append(1)
        return len(polls) > steps + 1  # the start check and every step pass; the final check cancels

    with pytest.raises(JobCancelled):
        render(tiny_model, tiny_profile, request, out_file, ignore, cancel_once_done)
    assert list(out_file.parent.iterdir()) == []


def test_allocation_failure_becomes_out_of_memory(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    """A generation size whose latents exceed any address space: a real allocator failure."""
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    huge = dataclasses.replace(tiny_profile.recipe_for(request), gen_width=2**27, gen_height=2**27)
    with pytest.raises(OutOfMemory, match="out of cpu memory"):
        tiny_model.generate(request, huge, ignore, never)
    assert generate(tiny_model, tiny_profile, request).frames.shape[0] == 17


def test_pipeline_error_becomes_generation_failed(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    invalid = dataclasses.replace(tiny_profile.recipe_for(request), gen_width=100)
    message = "t2v generation failed: ValueError: .*divisible by 32"
    with pytest.raises(GenerationFailed, match=message) as caught:
        tiny_model.generate(request, invalid, ignore, never)
    assert type(caught.value) is GenerationFailed


def test_missing_image_file_becomes_generation_failed(
    tiny_model: VideoModel, tiny_profile: Profile, tmp_path: Path
) -> None:
    missing = str(tmp_path / "gone.png")
    request = VideoTask(kind="i2v", prompt="a fox", first_frame=missing, seed=1)
    with pytest.raises(GenerationFailed, match="cannot read conditioning image gone.png"):
        generate(tiny_model, tiny_profile, request)


def test_resampling_in_time_keeps_both_ends_and_every_frame() -> None:
    counts = repeat_counts(17, 121)
    assert counts.sum() == 121 and counts[0] == counts[-1] == 4  # the ends sit on the ends
    assert set(counts[1:-1].tolist()) <= {7, 8}  # evenly spread: none dropped or hogging time
    assert repeat_counts(17, 17).tolist() == [1] * 17
    assert repeat_counts(33, 17).tolist().count(0) == 16  # fewer outputs: drop, never repeat


def test_saved_weights_load_offline_into_the_same_model(
    tiny_model: VideoModel, tiny_profile: Profile, tmp_path: Path
) -> None:
    """The real loading path (from_pretrained on a diffusers folder) gives the same videos."""
    from diffusers import LTX2Pipeline

    LTX2Pipeline(**build_tiny_components()).save_pretrained(tmp_path / "weights")
    loaded = load_video_model("tiny", "cpu", weights=tmp_path / "weights")
    request = VideoTask(kind="t2v", prompt="a fox", audio=True, seed=5)
    expected, actual = generate(tiny_model, tiny_profile, request), generate(loaded, tiny_profile, request)
    assert np.array_equal(expected.frames, actual.frames)


def test_a_shared_weights_root_does_not_stop_tiny(tiny_profile: Profile, tmp_path: Path) -> None:
    """``TAKEONE_WEIGHTS`` names the folder of the real profiles' weights; tiny has none
    there (it is built in), so it must still load."""
    (tmp_path / "Lightricks" / "LTX-2").mkdir(parents=True)
    model = load_video_model("tiny", "cpu", weights=tmp_path)
    video = generate(model, tiny_profile, VideoTask(kind="t2v", prompt="a fox", seed=5))
    assert video.frames.size > 0


def test_unknown_builtin_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown built-in weights"):
        load_video_model("tiny", "cpu", weights="builtin:nope")


def test_tiny_latents_stay_small(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    """Cost is quadratic in latent tokens: keep every tiny case under 100 (a 10 s clip at the
    diffusers test VAE's 2x compression would be thousands and take minutes on 2 cores)."""
    assert isinstance(tiny_model, Ltx2Model)
    vae = tiny_model.pipelines["t2v"].vae
    space, time_ = vae.spatial_compression_ratio, vae.temporal_compression_ratio
    for case in render_cases():
        recipe = tiny_profile.recipe_for(case.request(lambda *_: "x.png"))
        latent_frames = (recipe.gen_frames - 1) // time_ + 1
        assert latent_frames * (recipe.gen_height // space) * (recipe.gen_width // space) <= 100


def generate(model: VideoModel, profile: Profile, request: VideoTask) -> Video:
    return whole(model.generate(request, profile.recipe_for(request), ignore, never))


def test_non_finite_generated_audio_still_delivers_a_track(
    tiny_model: VideoModel, tiny_profile: Profile, out_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Random weights (and possibly real ones) can make the vocoder emit NaN or inf: the job
    delivers its AAC track anyway, silence where the samples were not numbers, with a warning."""
    assert isinstance(tiny_model, Ltx2Model)

    def poison(_module: object, _args: object, output: torch.Tensor) -> torch.Tensor:
        bad = output.clone()
        bad[..., ::3] = float("nan")
        bad[..., 1] = float("inf")
        return bad

    task = VideoTask(kind="t2v", prompt="a fox", audio=True, seed=2)
    handle = tiny_model.components["vocoder"].register_forward_hook(poison)
    try:
        info = render(tiny_model, tiny_profile, task, out_file, ignore, never)
    finally:
        handle.remove()
    assert info.has_audio and probe(out_file).audio_codec == "aac"
    assert any("non-finite audio samples" in record.getMessage() for record in caplog.records)
