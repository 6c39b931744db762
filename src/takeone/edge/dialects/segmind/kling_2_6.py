"""Kling 2.6: text or image to video with synchronized audio (seed defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from takeone.edge.dialects.segmind.common import (
    AspectRatio,
    CfgScale,
    Duration,
    EndpointInput,
    ImageField,
    Prompt,
    Seed,
)

SLUG = "kling-2.6"
DEFAULT_NEGATIVE = "no noise, no distortion, no clutter"


class Kling26Input(EndpointInput):
    """The body of ``POST /v1/kling-2.6`` and ``POST /v2/kling-2.6``."""

    prompt: Annotated[Prompt, Field(min_length=1)] = Field(description="The scene (required).")
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Elements to avoid.")
    cfg_scale: CfgScale = Field(0.8, description="Style strength, 0 to 1.")
    mode: Literal["pro"] = Field("pro", description="Only 'pro'.")
    aspect_ratio: AspectRatio = Field("16:9", description="Output aspect ratio.")
    duration: Duration = Field(10, description="Seconds: 5 or 10 (\"10\" accepted).")
    generate_audio: StrictBool = Field(True, description="Mux a synchronized audio track.")
    image_url: ImageField | None = Field(None, description="Optional first frame.")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")
