"""Kling 3.0 text to video, Standard and Pro (Segmind's ``kling-3-standard-text2video`` and
``kling-3-pro-text2video`` pages): 3 to 15 s, synchronized audio, and multi-shot videos.

Fields as Segmind lists them: ``prompt`` required; ``aspect_ratio`` 16:9 / 9:16 / 1:1
(16:9); ``cfg_scale`` 0-1 (0.5); ``duration`` "3" to "15" (a string on Segmind's page;
``5`` is accepted too), default "5"; ``generate_audio`` (true); ``negative_prompt`` (the
snippet's "blur, distort, and low quality"); ``multi_prompt``: up to 5 shots, each a
``prompt`` (required, at most 512 characters) and a ``duration`` (default "5").

With ``multi_prompt`` the video is the shots in order, each from its own prompt, and lasts
their total (3 to 15 s); ``duration``, if sent too, must equal that total (as Kling's own API
requires), and ``prompt`` is still required (Segmind marks it so) but not rendered.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from takeone.core.errors import InvalidRequest
from takeone.core.task import MAX_SHOTS
from takeone.edge.dialects.segmind.endpoint_input import (
    AspectRatio,
    CfgScale,
    EndpointInput,
    Prompt,
    Seed,
)

STANDARD_SLUG = "kling-3-standard-text2video"
PRO_SLUG = "kling-3-pro-text2video"
DEFAULT_NEGATIVE = "blur, distort, and low quality"
MIN_SECONDS, MAX_SECONDS = 3, 15
MAX_SHOT_PROMPT = 512


def _whole_seconds(value: Any) -> Any:
    """``"5"`` or ``5``; anything else (``5.0``, ``true``, ``"five"``) is refused by type."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("duration_type", 'must be a whole number of seconds such as "5" or 5, not {kind}',
                                  {"kind": type(value).__name__})
    return value


Seconds = Annotated[int, Field(ge=MIN_SECONDS, le=MAX_SECONDS), BeforeValidator(_whole_seconds)]
ShotSeconds = Annotated[int, Field(ge=1, le=MAX_SECONDS), BeforeValidator(_whole_seconds)]


class ShotInput(BaseModel):
    """One shot of ``multi_prompt``."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_SHOT_PROMPT, strict=True)] = Field(
        description="Prompt for this video segment. Max 512 characters.")
    duration: ShotSeconds = Field(5, description="Duration for this segment in seconds (\"5\" accepted).")


class Kling3Input(EndpointInput):
    """The body of ``POST /v1/kling-3-{standard,pro}-text2video`` (and ``/v2/...``)."""

    prompt: Annotated[Prompt, Field(min_length=1)] = Field(
        description="Describe the video content. Be detailed about actions, camera movements, lighting.")
    negative_prompt: Prompt = Field(DEFAULT_NEGATIVE, description="Elements to avoid in the video.")
    cfg_scale: CfgScale = Field(0.5, description="Prompt adherence strength. Higher values follow the prompt"
                                " more closely.")
    aspect_ratio: AspectRatio = Field("16:9", description="Aspect ratio of the generated video.")
    duration: Seconds = Field(5, description="Length of the output video in seconds, 3 to 15 (\"5\" accepted).")
    generate_audio: StrictBool = Field(True, description="Generate synchronized audio.")
    multi_prompt: Annotated[list[ShotInput], Field(min_length=1, max_length=MAX_SHOTS)] | None = Field(
        None, description="Multi-shot video generation. Each segment has its own prompt and duration."
        " Max 5 segments; they are rendered in order as one video of their total length (3 to 15 s).")
    seed: Seed | None = Field(None, description="Optional seed, echoed in the result metrics.")

    @model_validator(mode="after")
    def _shots_fit(self) -> Kling3Input:
        if self.multi_prompt is None:
            return self
        total = sum(shot.duration for shot in self.multi_prompt)
        if not MIN_SECONDS <= total <= MAX_SECONDS:
            raise InvalidRequest("multi_prompt", [shot.duration for shot in self.multi_prompt],
                                 f"the shots must last {MIN_SECONDS} to {MAX_SECONDS} seconds in all, not {total}")
        if "duration" in self.model_fields_set and self.duration != total:
            raise InvalidRequest("duration", self.duration, f"must equal the multi_prompt shots' total, {total}")
        return self

    def seconds(self) -> int:
        """The video's length: the shots' total, or ``duration``."""
        if self.multi_prompt is None:
            return self.duration
        return sum(shot.duration for shot in self.multi_prompt)
