"""Kling 2.6: text or image to video with synchronized audio (seed defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from takeone.edge.dialects.segmind.endpoint_input import (
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
# The seed's example, shortened; the playground starts with it (the field has no default)
EXAMPLE_PROMPT = "Visual: a narrow street packed with vibrant murals. Audio: street drums and claps."


class Kling26Input(EndpointInput):
    """The body of ``POST /v1/kling-2.6`` and ``POST /v2/kling-2.6``."""

    prompt: Annotated[Prompt, Field(min_length=1)] = Field(
        description="Guides the scene. Try 'tranquil forest morning' for nature-themed visuals.",
        examples=[EXAMPLE_PROMPT])
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Removes unwanted elements."
                                    " Use 'no noise' for cleaner visuals.")
    cfg_scale: CfgScale = Field(0.8, description="Adjusts style strength. Set to 0.8 for vivid"
                                " details.")
    mode: Literal["pro"] = Field("pro", description="Controls output quality. Choose 'pro' for"
                                 " polished outcomes (the only mode).")
    aspect_ratio: AspectRatio = Field("16:9", description="Sets frame dimensions. Use '16:9' for"
                                      " widescreen.")
    duration: Duration = Field(10, description="Defines video length. Use '10' for longer scenes"
                               " (seconds; \"10\" accepted).")
    generate_audio: StrictBool = Field(True, description="Includes music. Set to true for"
                                       " engaging audio (a synchronized audio track).")
    image_url: ImageField | None = Field(None, description="Link to video background. Use scenic"
                                         " images for dramatic effects. The first frame.")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")
