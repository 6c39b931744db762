"""Kling 2.5 Turbo: text or image to video, mode pro (Segmind's page for ``kling-2.5-turbo``).

Fields, defaults and ranges as Segmind lists them: ``prompt`` required, ``negative_prompt``
"no dark tones, no blur, no distort", ``cfg_scale`` 0-1 (0.7), ``duration`` 5 or 10 (10; its
snippets send ``"10"`` and ``10``, both accepted), ``mode`` "pro", ``aspect_ratio`` 16:9 /
9:16 / 1:1, ``image_url`` an optional first frame. Segmind's page says a video from an image
follows the image's aspect ratio; here it follows ``aspect_ratio`` (the image is cropped to it),
as ``kling-2.6`` does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from takeone.edge.dialects.segmind.endpoint_input import (
    AspectRatio,
    CfgScale,
    Duration,
    EndpointInput,
    ImageField,
    Prompt,
    Seed,
)

SLUG = "kling-2.5-turbo"
DEFAULT_NEGATIVE = "no dark tones, no blur, no distort"


class Kling25TurboInput(EndpointInput):
    """The body of ``POST /v1/kling-2.5-turbo`` and ``POST /v2/kling-2.5-turbo``."""

    prompt: Annotated[Prompt, Field(min_length=1)] = Field(
        description="Enter desired video effects like 'smooth zoom'. For creativity, try 'vibrant kaleidoscope'.")
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Mention effects to exclude, like 'no blur'"
                                    " for clarity. Try 'no dark colors'.")
    cfg_scale: CfgScale = Field(0.7, description="Control effect sharpness, 0.7 for balance. Increase to 0.8"
                                " for more emphasis.")
    duration: Duration = Field(10, description="Length of the video in seconds: 5 or 10 (\"10\" accepted).")
    mode: Literal["pro"] = Field("pro", description="Quality mode (the only one: pro).")
    aspect_ratio: AspectRatio = Field("16:9", description="Set video frame size. '16:9' for widescreens,"
                                      " '1:1' for social media, '9:16' for vertical.")
    image_url: ImageField | None = Field(None, description="Provide a URL for video background. The first"
                                         " frame, cropped to aspect_ratio.")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")
