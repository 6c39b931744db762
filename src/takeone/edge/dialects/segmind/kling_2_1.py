"""Kling 2.1: image to video, optional last frame, modes std/pro/master (seed defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from takeone.edge.dialects.segmind.common import (
    AspectRatio,
    CfgScale,
    Duration,
    EndpointInput,
    ImageField,
    Prompt,
    Seed,
)
from takeone.core.errors import InvalidRequest

SLUG = "kling-2.1"
DEFAULT_PROMPT = (
    "Front View Shot of model in casual wear. [Push in] [Static shot] Subtle shoulder rotation,"
    " confident smile, hands in pockets, slight weight shift."
)
DEFAULT_NEGATIVE = "No jittery motion, avoid rapid scene changes."


class Kling21Input(EndpointInput):
    """The body of ``POST /v1/kling-2.1`` and ``POST /v2/kling-2.1``."""

    image: ImageField = Field(description="The first frame (required).")
    prompt: Prompt = Field(DEFAULT_PROMPT, description="Describe the desired motion.")
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Effects to avoid.")
    cfg_scale: CfgScale = Field(0.7, description="Prompt adherence, 0 to 1.")
    mode: Literal["std", "pro", "master"] = Field("pro", description="Quality mode.")
    aspect_ratio: AspectRatio = Field("16:9", description="Output aspect ratio.")
    duration: Duration = Field(5, description="Seconds: 5 or 10 (\"5\" accepted).")
    image_tail: ImageField | None = Field(
        None, description="Optional last frame; needs mode pro or master.")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")

    @model_validator(mode="after")
    def _tail_needs_pro(self) -> Kling21Input:
        if self.image_tail is not None and self.mode == "std":
            raise InvalidRequest("mode", self.mode, "must be 'pro' or 'master' when image_tail is set")
        return self
