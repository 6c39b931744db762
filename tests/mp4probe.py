"""Open an MP4 with PyAV and report what a player would see."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av


@dataclass(frozen=True)
class Probe:
    codec: str
    pix_fmt: str
    width: int
    height: int
    frames: int
    fps: float
    duration: float
    audio_codec: str | None
    audio_duration: float | None
    faststart: bool


def probe(data: bytes) -> Probe:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video=0))
        return Probe(
            codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt or "",
            width=video.codec_context.width,
            height=video.codec_context.height,
            frames=frames,
            fps=float(video.average_rate or 0),
            duration=float(video.duration * video.time_base) if video.duration else 0.0,
            audio_codec=audio.codec_context.name if audio else None,
            audio_duration=float(audio.duration * audio.time_base) if audio and audio.duration else None,
            faststart=_moov_before_mdat(data),
        )


def _moov_before_mdat(data: bytes) -> bool:
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    return 0 <= moov < mdat
