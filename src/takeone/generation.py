"""The typed description of one video to generate, shared by the API and the worker.

The API process builds a :class:`GenerationRequest` from a validated HTTP body (images already
fetched, decoded and saved as PNG files); the worker process turns it into a video. Nothing in
this module imports torch.

Example::

    req = GenerationRequest(endpoint="kling-2.6", prompt="a red fox", duration=5)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Endpoint = Literal["kling-2.1", "kling-2.6"]
ENDPOINTS: tuple[Endpoint, ...] = ("kling-2.1", "kling-2.6")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
DURATIONS = (5, 10)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything the worker needs to make one video.

    ``image`` and ``image_tail`` are paths to PNG files the API saved (first and last frame).
    """

    endpoint: Endpoint
    prompt: str = ""
    negative_prompt: str = ""
    cfg_scale: float = 0.7
    mode: str = "pro"
    aspect_ratio: str = "16:9"
    duration: int = 5
    generate_audio: bool = False
    image: str | None = None
    image_tail: str | None = None
    seed: int | None = None

    @property
    def has_image(self) -> bool:
        return self.image is not None

    @property
    def has_last_frame(self) -> bool:
        return self.image_tail is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(**data)
