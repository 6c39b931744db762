"""The tail image of first+last-frame generation sits on the last pixel frame: the positions the
tiny LTX-2 transformer is given for the appended keyframe tokens, read back in pixel frames."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from takeone.core.task import VideoTask
from takeone.models.ltx2.keyframes import last_latent_pixel_frame
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.tiny import build_tiny_components
from takeone.models.recipe import Profile
from tests.unit.models.callbacks import ignore, never


def test_diffusers_would_put_the_tail_seven_frames_early() -> None:
    assert last_latent_pixel_frame(121, 8) == 113 and last_latent_pixel_frame(241, 8) == 233


def test_the_tail_keyframe_is_placed_on_the_last_generated_frame(
    tiny_profile: Profile, make_png: Callable[..., str]
) -> None:
    model = Ltx2Model(build_tiny_components(), torch.device("cpu"))
    task = VideoTask(kind="flf2v", prompt="a fox", first_frame=make_png(64, 64, 1), last_frame=make_png(64, 64, 2),
                     seed=2)  # fmt: skip
    recipe = dataclasses.replace(tiny_profile.recipe_for(task), steps=1)
    assert recipe.pipeline == "condition"
    seen: list[torch.Tensor] = []

    def capture(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["video_coords"])

    transformer = model.components["transformer"]
    handle = transformer.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        video = model.generate(task, recipe, ignore, never)
    finally:
        handle.remove()
    frames, ratio = recipe.gen_frames, model.pipelines["condition"].vae_temporal_compression_ratio
    assert frames > ratio + 1 and video.frame_count == frames
    coords = seen[0][0]  # [3 axes, tokens, (start, end)], time in seconds
    height, width = recipe.gen_height // 32, recipe.gen_width // 32  # tiny VAE: 32 px per latent
    keyframe_tokens = coords.shape[1] - ((frames - 1) // ratio + 1) * height * width
    assert keyframe_tokens == height * width
    starts = {round(float(t) * recipe.gen_fps, 3) for t in coords[0, -keyframe_tokens:, 0]}
    ends = {round(float(t) * recipe.gen_fps, 3) for t in coords[0, -keyframe_tokens:, 1]}
    assert starts == {frames - 1} and ends == {frames}  # one pixel frame: the last one
    assert last_latent_pixel_frame(frames, ratio) != frames - 1  # where it was before
