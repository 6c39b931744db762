"""Write decoded frames and an optional audio track as a web-ready MP4.

The worker hands over raw RGB frames and float audio; clients expect what Segmind serves: an
H.264 (yuv420p) MP4 that browsers play progressively, so the ``moov`` atom goes first
(``+faststart``). The file appears atomically: it is written under a temporary name in the
destination folder and renamed only once complete, so a reader never sees half a video and a
failure leaves nothing behind. Only numpy and PyAV are used (no torch): the API process may
import this module.

Example::

    encode_mp4(Path("out.mp4"), frames, 24, 256, 144, audio, 16000)
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from av.video.stream import VideoStream

VIDEO_CODEC: Final = "libx264"
PIXEL_FORMAT = "yuv420p"
PRESET = "veryfast"
CRF = 20
AUDIO_CODEC: Final = "aac"
AUDIO_BITRATE = 128_000
Frames = npt.NDArray[np.uint8]  # [F, H, W, 3] RGB
Audio = npt.NDArray[np.float32]  # [channels, samples] in -1..1
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_LAYOUTS = {1: "mono", 2: "stereo"}


def encode_mp4(
    path: Path | str,
    frames: Frames,
    fps: int | Fraction,
    width: int,
    height: int,
    audio: Audio | None = None,
    sample_rate: int = 0,
) -> None:
    """Encode ``frames`` (uint8 ``[F, H, W, 3]``) as exactly ``width`` x ``height`` at ``fps``.

    Frames of another size are scaled (bicubic, no cropping) to exactly that size.
    ``audio`` (float32 ``[channels, samples]`` in -1..1, mono or stereo) becomes an AAC
    track padded with silence or trimmed to the video's duration, so both tracks end
    together. Raises ``ValueError`` for malformed input before any file is
    created, and PyAV errors for codec failures (the temporary file is then removed).
    """
    _check_frames(frames)
    _check_size(width, height)
    _check_audio(audio, sample_rate)
    target = Path(path)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        _write(temp, frames, Fraction(fps), width, height, audio, sample_rate)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check_frames(frames: Frames) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: a video needs at least one frame")


def _check_size(width: int, height: int) -> None:
    # yuv420p stores chroma at half resolution, so H.264 needs even dimensions.
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even, got {width}x{height}")


def _check_audio(audio: Audio | None, sample_rate: int) -> None:
    if audio is None:
        return
    if audio.ndim != 2 or audio.shape[0] not in _LAYOUTS:
        raise ValueError(f"audio must be [channels, samples] with 1 or 2 channels, got {audio.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive with audio, got {sample_rate}")


def _write(
    temp: Path,
    frames: Frames,
    fps: Fraction,
    width: int,
    height: int,
    audio: Audio | None,
    sample_rate: int,
) -> None:
    """Mux everything into ``temp``; the container is closed whatever happens."""
    container = av.open(str(temp), mode="w", format="mp4", container_options={"movflags": "+faststart"})
    try:
        _mux_all(container, frames, fps, width, height, audio, sample_rate)
    except BaseException:
        _close_quietly(container)
        raise
    container.close()


def _close_quietly(container: OutputContainer) -> None:
    """Close after a failure without letting a second error hide the first one."""
    try:
        container.close()
    except Exception:  # noqa: BLE001 - the original error is the one worth reporting
        pass


def _mux_all(
    container: OutputContainer,
    frames: Frames,
    fps: Fraction,
    width: int,
    height: int,
    audio: Audio | None,
    sample_rate: int,
) -> None:
    # Every stream must exist before the first packet is muxed (that writes the header).
    video = _add_video_stream(container, fps, width, height)
    audio_stream = None if audio is None else _add_audio_stream(container, sample_rate, audio.shape[0])
    _encode_video(container, video, frames)
    if audio is not None and audio_stream is not None:
        samples = round(len(frames) / fps * sample_rate)
        _encode_audio(container, audio_stream, fit_audio(audio, samples), sample_rate)


def _add_video_stream(container: OutputContainer, fps: Fraction, width: int, height: int) -> VideoStream:
    stream = container.add_stream(VIDEO_CODEC, rate=fps, options={"preset": PRESET, "crf": str(CRF)})
    stream.width = width
    stream.height = height
    stream.pix_fmt = PIXEL_FORMAT
    context = stream.codec_context
    context.thread_count = 0  # 0 lets x264 pick one thread per core
    context.color_primaries = context.color_trc = context.colorspace = _BT709
    context.color_range = int(ColorRange.MPEG)
    return stream


def _add_audio_stream(container: OutputContainer, sample_rate: int, channels: int) -> AudioStream:
    stream = container.add_stream(
        AUDIO_CODEC, rate=sample_rate, layout=_LAYOUTS[channels], options={"aac_coder": "fast"}
    )
    stream.bit_rate = AUDIO_BITRATE
    return stream


def _encode_video(container: OutputContainer, stream: VideoStream, frames: Frames) -> None:
    for index, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame = frame.reformat(
            stream.width,
            stream.height,
            PIXEL_FORMAT,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            interpolation=Interpolation.BICUBIC,
        )
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def fit_audio(audio: Audio, samples: int) -> Audio:
    """Trim or zero-pad ``audio`` ``[channels, n]`` to exactly ``samples``, clipped to -1..1."""
    fitted = np.zeros((audio.shape[0], samples), dtype=np.float32)
    keep = min(samples, audio.shape[1])
    fitted[:, :keep] = audio[:, :keep]
    return np.clip(fitted, -1.0, 1.0, out=fitted)


def _encode_audio(
    container: OutputContainer, stream: AudioStream, audio: Audio, sample_rate: int
) -> None:
    # One planar float frame; PyAV's encoder-side resampler converts it to the AAC
    # encoder's sample format and cuts it into the encoder's fixed frame size.
    frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout=_LAYOUTS[audio.shape[0]])
    frame.sample_rate = sample_rate
    frame.pts = 0
    frame.time_base = Fraction(1, sample_rate)
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
