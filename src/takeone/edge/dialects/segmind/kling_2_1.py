"""Kling 2.1: image to video, optional last frame, modes std/pro/master (seed defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from takeone.core.errors import InvalidRequest
from takeone.edge.dialects.segmind.endpoint_input import (
    AspectRatio,
    CfgScale,
    Duration,
    EndpointInput,
    ImageField,
    Prompt,
    Seed,
)

SLUG = "kling-2.1"
DEFAULT_PROMPT = (
    "Front View Shot of model in casual wear. [Push in] [Static shot] Subtle shoulder rotation,"
    " confident smile, hands in pockets, slight weight shift."
)
DEFAULT_NEGATIVE = "No jittery motion, avoid rapid scene changes."


class Kling21Input(EndpointInput):
    """The body of ``POST /v1/kling-2.1`` and ``POST /v2/kling-2.1``."""

    image: ImageField = Field(description="Provide an image to be animated. Use clear,"
                              " high-quality images for best results. The first frame.")
    prompt: Prompt = Field(DEFAULT_PROMPT, description="Describe the desired animation effect."
                           " Use creative, vivid descriptions for dynamic animations.")
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Specify unwanted effects. List"
                                    " distractions like sudden flashes or fast zooms to avoid them.")
    cfg_scale: CfgScale = Field(0.7, description="Controls animation adherence to the prompt."
                                " Lower for more freedom, higher for precise adherence.")
    mode: Literal["std", "pro", "master"] = Field("pro", description="Choose animation quality"
                                                  " mode. 'Pro' for balanced quality, 'Master'"
                                                  " for quality focus.")
    aspect_ratio: AspectRatio = Field("16:9", description="Select output aspect ratio. '16:9' is"
                                      " best for widescreens, '1:1' for social media.")
    duration: Duration = Field(5, description="Set animation duration. Choose '5' for short"
                               " previews, '10' for detailed views (seconds; \"5\" accepted).")
    image_tail: ImageField | None = Field(
        None, description="Last frame of the video (mode pro or master is required when this"
        " parameter is set).")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")

    @model_validator(mode="after")
    def _tail_needs_pro(self) -> Kling21Input:
        if self.image_tail is not None and self.mode == "std":
            raise InvalidRequest("mode", self.mode, "must be 'pro' or 'master' when image_tail is set")
        return self
