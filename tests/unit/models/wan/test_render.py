"""Every ``wan-2.2`` case rendered on tiny checkpoints, loaded by the real loading code.

The tiny checkpoints are written as a Hugging Face cache (and as plain folders) in the real
repos' layouts and loaded through ``load_video_model("wan-2.2", ...)`` without network. The
recipes are the real profile's, shrunk (:func:`takeone.models.wan.profile.shrink`): same
pipelines, experts, expert boundaries, guidance and conditioning; generation sizes / 16,
output sizes / 8, 9 / 17 generated frames, 2 steps and 64 text tokens. Nothing is mocked;
PyAV reads every MP4 back.

Torch runs on one thread here: with tensors this small, a second thread only adds pool
synchronisation, which turns into seconds per video when the machine is oversubscribed.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from PIL import Image

from takeone.core.errors import (
    GenerationFailed,
    InvalidRequest,
    JobCancelled,
    OutOfMemory,
)
from takeone.core.task import TaskKind, VideoTask
from takeone.engine.render import render, repeat_counts
from takeone.models.base import Video
from takeone.models.loader import load_video_model
from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.recipe import Profile
from takeone.models.registry import get_profile
from takeone.models.wan.model import WanModel
from takeone.models.wan.profile import FLF2V_REPO, shrink
from takeone.models.wan.tiny import write_tiny_wan_repos
from takeone.models.weights import WeightsMissing
from tests.unit.models.callbacks import ignore, never, whole

SIZES = {"16:9": (160, 90), "9:16": (90, 160), "1:1": (90, 90)}
FRAMES = {5: 81, 10: 161}  # delivered at Wan's 16 fps
GEN_FRAMES = {5: 9, 10: 17}




@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def wan_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake Hugging Face cache holding the three tiny Wan repos."""
    return write_tiny_wan_repos(tmp_path_factory.mktemp("hf") / "hub", layout="cache")


@pytest.fixture(scope="session")
def wan_model(wan_root: Path) -> WanModel:
    model = load_video_model("wan-2.2", "cpu", weights=wan_root)
    assert isinstance(model, WanModel)
    return model


@pytest.fixture(scope="session")
def wan_profile() -> Profile:
    return shrink(get_profile("wan-2.2"), gen_divisor=16, gen_frames=GEN_FRAMES, steps=2, max_sequence_length=64)


def wan_cases() -> list[VideoTask]:
    """Every distinct recipe: tier x kind x aspect ratio x duration (i2v and flf2v on every
    tier, t2v on the standard one)."""
    framed = [
        VideoTask(kind=kind, tier=tier, first_frame="first", last_frame="last" if kind == "flf2v" else None,
                  aspect_ratio=aspect, seconds=seconds)
        for tier in ("fast", "standard", "quality") for kind in ("i2v", "flf2v") for aspect in SIZES
        for seconds in FRAMES
    ]
    text = [VideoTask(kind="t2v", aspect_ratio=aspect, seconds=seconds) for aspect in SIZES for seconds in FRAMES]
    return framed + text  # type: ignore[arg-type]


def case_id(req: VideoTask) -> str:
    return f"{req.kind}-{req.tier}-{req.aspect_ratio}-{req.seconds}s"


def with_images(req: VideoTask, make_png: Callable[..., str], seed: int = 3) -> VideoTask:
    return dataclasses.replace(
        req,
        prompt="a red fox runs through snow",
        negative_prompt="blurry",
        first_frame=make_png(400, 300, 1) if req.first_frame else None,
        last_frame=make_png(300, 400, 2) if req.last_frame else None,
        seed=seed,
    )


def probe(path: Path) -> tuple[int, int, float, int, int]:
    """(width, height, frame rate, decoded frames, audio streams) as a player sees them."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        rate = float(Fraction(video.average_rate or 0))
        return video.codec_context.width, video.codec_context.height, rate, frames, len(container.streams.audio)


@pytest.mark.parametrize("case", wan_cases(), ids=case_id)
def test_render_case(
    case: VideoTask, wan_model: WanModel, wan_profile: Profile, make_png: Callable[..., str], out_file: Path
) -> None:
    request = with_images(case, make_png)
    calls: list[tuple[int, int]] = []
    info = render(wan_model, wan_profile, request, out_file, lambda d, t: calls.append((d, t)), never)

    width, height = SIZES[case.aspect_ratio]
    assert probe(out_file) == (width, height, 16, FRAMES[case.seconds], 0)
    delivered = (info.width, info.height, info.frames, info.fps, info.has_audio)
    assert delivered == (width, height, FRAMES[case.seconds], 16, False)
    assert info.seed == 3 and calls == [(1, 3), (2, 3), (3, 3)]  # 2 steps, then decode and MP4


def test_audio_is_refused_before_any_work(
    wan_model: WanModel, wan_profile: Profile, out_file: Path
) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", audio=True, seed=1)
    with pytest.raises(InvalidRequest, match="silent videos only") as caught:
        render(wan_model, wan_profile, request, out_file, ignore, never)
    assert caught.value.field == "audio"
    assert list(out_file.parent.iterdir()) == []


def test_pipelines_share_text_encoder_tokenizer_and_vae(wan_model: WanModel, wan_profile: Profile) -> None:
    for pipeline in ("t2v", "condition"):  # loaded on first use; make sure they are
        wan_model.pipeline(pipeline)
    base = wan_model.pipelines["i2v"]
    for name in ("text_encoder", "tokenizer", "vae"):
        assert all(getattr(pipe, name) is getattr(base, name) for pipe in wan_model.pipelines.values()), name
    transformers = [p.transformer for p in wan_model.pipelines.values()]
    assert len({id(t) for t in transformers}) == 3
    assert wan_model.pipelines["condition"].image_encoder is not None and base.image_encoder is None


def test_checkpoints_load_lazily_and_from_plain_folders(
    wan_model: WanModel, wan_profile: Profile, tmp_path: Path
) -> None:
    """``<org>/<name>`` folders holding only what ``takeone pull`` fetches (no second copy of the
    shared parts) load the same weights as the full cache, each checkpoint on first use."""
    root = write_tiny_wan_repos(tmp_path, layout="folders", complete=False)
    assert not (root / FLF2V_REPO / "text_encoder").exists()
    model = load_video_model("wan-2.2", "cpu", weights=root)
    assert isinstance(model, WanModel) and sorted(model.pipelines) == ["i2v"]
    request = VideoTask(kind="t2v", prompt="a fox", seed=5)
    expected = generate(wan_model, wan_profile, request).frames
    assert np.array_equal(generate(model, wan_profile, request).frames, expected)
    assert sorted(model.pipelines) == ["i2v", "t2v"]


def test_missing_weights_are_refused_before_loading(tmp_path: Path) -> None:
    """Even a checkpoint that would load lazily is checked at start, naming the folder."""
    with pytest.raises(ValueError, match="does not exist"):
        load_video_model("wan-2.2", "cpu", weights=tmp_path / "absent")
    root = write_tiny_wan_repos(tmp_path / "hub", layout="folders", complete=False)
    shutil.rmtree(root / FLF2V_REPO / "image_encoder")
    with pytest.raises(WeightsMissing, match=f"{FLF2V_REPO}/image_encoder/[\\s\\S]*takeone pull wan-2.2"):
        load_video_model("wan-2.2", "cpu", weights=root)


@pytest.mark.parametrize(("kind", "boundary"), [("i2v", 0.9), ("t2v", 0.875)])
def test_both_experts_denoise_split_at_the_boundary(
    kind: TaskKind, boundary: float, wan_model: WanModel, wan_profile: Profile, make_png: Callable[..., str]
) -> None:
    first = make_png(64, 64) if kind == "i2v" else None
    request = VideoTask(kind=kind, first_frame=first, seed=1)
    recipe = dataclasses.replace(wan_profile.recipe_for(request), steps=4)
    pipe = wan_model.pipeline(recipe.pipeline)
    with count_calls(pipe.transformer) as high, count_calls(pipe.transformer_2) as low:
        wan_model.generate(request, recipe, ignore, never)
    # Steps at or above the boundary go to the high-noise expert, two passes each (guidance).
    timesteps = pipe.scheduler.timesteps
    above = int((timesteps >= boundary * pipe.scheduler.config.num_train_timesteps).sum())
    assert 0 < above < 4 and (high, low) == ([2 * above], [2 * (4 - above)])
    assert pipe.config.boundary_ratio == boundary
    # Wan 2.2's reference scales per expert and scheduler shift (the repos ship shift 3.0).
    expected = {"t2v": ((4.0, 3.0), 12.0), "i2v": ((3.5, 3.5), 5.0)}[kind]
    assert ((pipe._guidance_scale, pipe._guidance_scale_2), pipe.scheduler.config.flow_shift) == expected


@pytest.fixture(scope="session")
def black_and_white(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Flat frames: random-noise PNGs scale down to near-identical grey at tiny sizes."""
    folder = tmp_path_factory.mktemp("flat")
    paths = (str(folder / "black.png"), str(folder / "white.png"))
    for path, value in zip(paths, (0, 255)):
        Image.new("RGB", (400, 300), (value, value, value)).save(path)
    return paths


def test_last_frame_reaches_clip_and_latents(
    wan_model: WanModel, wan_profile: Profile, black_and_white: tuple[str, str]
) -> None:
    """FLF2V encodes both frames with CLIP, and another last frame gives another video."""
    black, white = black_and_white
    base = VideoTask(kind="flf2v", tier="fast", prompt="a fox", first_frame=black, last_frame=black, seed=3)
    encoder = wan_model.pipeline("condition").image_encoder
    with count_calls(encoder, batch=True) as batches:
        first = generate(wan_model, wan_profile, base).frames
    other = generate(wan_model, wan_profile, dataclasses.replace(base, last_frame=white)).frames
    assert batches == [2] and not np.array_equal(first, other)


@pytest.mark.parametrize("field", ["first_frame", "prompt", "negative_prompt"])
def test_first_frame_and_prompts_change_the_video(
    field: str, wan_model: WanModel, wan_profile: Profile, black_and_white: tuple[str, str]
) -> None:
    black, white = black_and_white
    base = VideoTask(kind="i2v", prompt="a fox", negative_prompt="blurry", first_frame=black, seed=3)
    changes: dict[str, Any] = {field: {"first_frame": white, "prompt": "a cat", "negative_prompt": "x"}[field]}
    other = dataclasses.replace(base, **changes)
    videos = [generate(wan_model, wan_profile, request).frames for request in (base, other)]
    assert not np.array_equal(*videos)


def test_seed_reproduces_and_unseeded_reports_its_seed(wan_model: WanModel, wan_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox")
    video = generate(wan_model, wan_profile, request)
    assert 0 <= video.seed < 2**31 and video.audio is None
    again = generate(wan_model, wan_profile, dataclasses.replace(request, seed=video.seed))
    other = generate(wan_model, wan_profile, dataclasses.replace(request, seed=video.seed + 1))
    assert np.array_equal(video.frames, again.frames) and not np.array_equal(video.frames, other.frames)
    recipe = wan_profile.recipe_for(request)
    assert video.frames.dtype == np.uint8 and video.fps == recipe.gen_fps
    assert video.frames.shape == (recipe.gen_frames, recipe.gen_height, recipe.gen_width, 3)


@pytest.mark.parametrize("cancel_after", [0, 1, 2])
def test_cancellation_raises_job_cancelled_and_writes_nothing(
    cancel_after: int, wan_model: WanModel, wan_profile: Profile, out_file: Path
) -> None:
    polls: list[int] = []

    def should_cancel() -> bool:
        polls.append(1)
        return len(polls) > cancel_after

    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    with pytest.raises(JobCancelled):
        render(wan_model, wan_profile, request, out_file, ignore, should_cancel)
    assert len(polls) == cancel_after + 1 and list(out_file.parent.iterdir()) == []
    assert render(wan_model, wan_profile, request, out_file, ignore, never).frames == 81


def test_allocation_failure_becomes_out_of_memory(wan_model: WanModel, wan_profile: Profile) -> None:
    """Latents larger than any address space: a real allocator failure, and the model survives."""
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    huge = dataclasses.replace(wan_profile.recipe_for(request), gen_width=2**27, gen_height=2**27)
    with pytest.raises(OutOfMemory, match="out of cpu memory"):
        wan_model.generate(request, huge, ignore, never)
    assert generate(wan_model, wan_profile, request).frames.shape[0] == GEN_FRAMES[5]


def test_pipeline_error_becomes_generation_failed(wan_model: WanModel, wan_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    invalid = dataclasses.replace(wan_profile.recipe_for(request), gen_width=40)
    with pytest.raises(GenerationFailed, match="t2v generation failed: ValueError: .*divisible by 16") as caught:
        wan_model.generate(request, invalid, ignore, never)
    assert type(caught.value) is GenerationFailed


def test_foreign_or_audio_recipes_are_refused(wan_model: WanModel, wan_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    recipe = wan_profile.recipe_for(request)
    ltx2 = dataclasses.replace(recipe, sampling=Ltx2Sampling())
    for wrong in (ltx2, dataclasses.replace(recipe, audio=True)):
        with pytest.raises(GenerationFailed, match="Wan cannot run"):
            wan_model.generate(request, wrong, ignore, never)


def test_missing_image_file_becomes_generation_failed(
    wan_model: WanModel, wan_profile: Profile, tmp_path: Path
) -> None:
    request = VideoTask(kind="i2v", first_frame=str(tmp_path / "gone.png"), seed=1)
    with pytest.raises(GenerationFailed, match="cannot read conditioning image gone.png"):
        generate(wan_model, wan_profile, request)


def test_streamed_decode_equals_the_pipelines_own(wan_model: WanModel, wan_profile: Profile) -> None:
    """Latent frame by latent frame (1 frame, then 4 each), exactly the frames of the
    pipeline's ``output_type="pt"`` decode of the same job."""
    from takeone.models.base import FrameStream
    from takeone.models.family_helpers import frames_to_uint8
    from takeone.models.wan.model import arguments

    request = VideoTask(kind="t2v", prompt="a fox", seconds=10, seed=6)
    recipe = wan_profile.recipe_for(request)
    video = wan_model.generate(request, recipe, ignore, never)
    assert isinstance(video.frames, FrameStream) and video.frame_count == recipe.gen_frames
    chunks = list(video.frames)
    pipe = wan_model.pipeline(recipe.pipeline)
    reference = pipe(**{**arguments(request, recipe, 6, ignore, never), "output_type": "pt"})
    assert [len(chunk) for chunk in chunks] == [1, 4, 4, 4, 4]
    np.testing.assert_array_equal(np.concatenate(chunks), frames_to_uint8(reference.frames[0]))


def test_cancel_while_decoding_raises_job_cancelled(wan_model: WanModel, wan_profile: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", seed=6)
    cancelled = [False]
    video = wan_model.generate(request, wan_profile.recipe_for(request), ignore, lambda: cancelled[0])
    chunks = video.chunks()
    next(chunks)
    cancelled[0] = True
    with pytest.raises(JobCancelled):
        next(chunks)


def test_offloaded_vae_decodes_the_same_frames(wan_root: Path, wan_model: WanModel, wan_profile: Profile) -> None:
    """With model CPU offload the streamed decode runs the VAE's offloading hook itself."""
    offloaded = load_video_model("wan-2.2", "cpu", weights=wan_root)
    assert isinstance(offloaded, WanModel)
    offloaded.offload = True
    request = VideoTask(kind="t2v", prompt="a fox", seed=2)
    expected = generate(wan_model, wan_profile, request).frames
    assert np.array_equal(generate(offloaded, wan_profile, request).frames, expected)
    assert hasattr(offloaded.pipeline("t2v").vae, "_hf_hook")


@contextmanager
def count_calls(module: torch.nn.Module, batch: bool = False) -> Iterator[list[int]]:
    """Count a module's forward passes (or record each call's batch size) with a plain torch hook."""
    seen: list[int] = []

    def hook(_: torch.nn.Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        if batch:
            pixels: Any = kwargs.get("pixel_values", args[0] if args else None)
            seen.append(int(pixels.shape[0]))
        elif seen:
            seen[0] += 1
        else:
            seen.append(1)

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def generate(model: WanModel, profile: Profile, request: VideoTask) -> Video:
    return whole(model.generate(request, profile.recipe_for(request), ignore, never))


def test_no_negative_prompt_means_wans_default(wan_model: WanModel, wan_profile: Profile) -> None:
    from takeone.models.wan.profile import NEGATIVE_PROMPT

    empty = VideoTask(kind="t2v", prompt="a fox", negative_prompt="", seed=5)
    default = dataclasses.replace(empty, negative_prompt=NEGATIVE_PROMPT)
    videos = [generate(wan_model, wan_profile, task).frames for task in (empty, default)]
    assert np.array_equal(*videos)


def test_a_pin_to_an_absent_snapshot_is_refused_before_loading(wan_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Wan loader reads the pinned snapshot (``TAKEONE_REVISIONS``), never another one."""
    from takeone.models.wan.profile import I2V_REPO

    monkeypatch.setenv("TAKEONE_REVISIONS", f"{I2V_REPO}={'d' * 40}")
    with pytest.raises(WeightsMissing, match=f"{I2V_REPO}@{'d' * 40}/transformer/"):
        load_video_model("wan-2.2", "cpu", weights=wan_root)


def test_the_real_frame_count_is_delivered_at_16_fps_each_frame_once(
    wan_model: WanModel, out_file: Path, black_and_white: tuple[str, str]
) -> None:
    """The real profile's 81 frames (shrunk in space only): 81 frames at 16 fps in the MP4,
    no frame repeated to reach 24 fps, however a player counts them."""
    profile = shrink(get_profile("wan-2.2"), gen_divisor=16, steps=2, max_sequence_length=64)
    task = VideoTask(kind="i2v", tier="fast", first_frame=black_and_white[0], seconds=5, seed=1)
    recipe = profile.recipe_for(task)
    assert repeat_counts(recipe.gen_frames, recipe.output_frames).tolist() == [1] * 81
    info = render(wan_model, profile, task, out_file, ignore, never)
    assert (info.fps, info.frames) == (16, 81) and probe(out_file)[2:4] == (16, 81)
