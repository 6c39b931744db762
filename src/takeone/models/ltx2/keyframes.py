"""The tail image of first+last-frame generation on the last pixel frame, as Lightricks places it.

diffusers' :class:`LTX2ConditionPipeline` reads a condition's ``index`` as a latent index and
puts a keyframe at latent ``k`` on pixel frame ``(k - 1) * 8 + 1`` (its positional coordinates
start there). ``index=-1``, the last latent, thus lands on pixel frame 113 of 121: the last 7
frames are left unconstrained. Lightricks' reference places keyframes by pixel frame, and the
last frame of a 121-frame clip is frame 120. :class:`PixelKeyframeConditionPipeline` moves a
keyframe at the last latent index to pixel frame ``num_frames - 1``; a keyframe at any other
index is placed as diffusers places it.

Example::

    pipe = PixelKeyframeConditionPipeline(**components)
    pipe(conditions=[LTX2VideoCondition(first, index=0), LTX2VideoCondition(last, index=-1)], num_frames=121)
"""

from __future__ import annotations

from typing import Any

from diffusers import LTX2ConditionPipeline

_Base: Any = LTX2ConditionPipeline  # untyped upstream class


def last_latent_pixel_frame(num_frames: int, ratio: int) -> int:
    """The pixel frame diffusers gives a keyframe at the last latent index of ``num_frames``."""
    latent_frames = (num_frames - 1) // ratio + 1
    return (latent_frames - 2) * ratio + 1


class PixelKeyframeConditionPipeline(_Base):  # type: ignore[misc]
    """:class:`LTX2ConditionPipeline` with the last-latent keyframe on the last pixel frame."""

    _num_frames: int | None = None

    def prepare_latents(self, *args: Any, **kwargs: Any) -> Any:
        self._num_frames = kwargs.get("num_frames")
        try:
            return super().prepare_latents(*args, **kwargs)
        finally:
            self._num_frames = None

    def _prepare_keyframe_coords(self, *, pixel_frame_idx: int, **kwargs: Any) -> Any:
        frames, ratio = self._num_frames, self.vae_temporal_compression_ratio
        if frames is not None and pixel_frame_idx == last_latent_pixel_frame(frames, ratio):
            pixel_frame_idx = frames - 1
        return super()._prepare_keyframe_coords(pixel_frame_idx=pixel_frame_idx, **kwargs)
