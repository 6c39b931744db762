"""Write decoded frames and an optional audio track as a web-ready MP4.

The worker hands over RGB frames and float audio; clients expect what Segmind serves: an
H.264 (yuv420p) MP4 that browsers play progressively, so the ``moov`` atom goes first
(``+faststart``). The file appears atomically: it is written under a temporary name in the
destination folder and renamed only once complete, so a reader never sees half a video and a
failure leaves nothing behind.

Frames stream through :class:`Mp4Writer` in chunks of any size, and each frame is converted on
its own (float to uint8, layout, RGB to BT.709 yuv420p and scaling in one libswscale pass), so a
10 s 1080p clip never needs a second whole-clip copy: a decoder can hand over a chunk, have it
encoded and free it. x264 runs frame-threaded on every core. Only numpy and PyAV are imported
(torch tensors are accepted by duck typing), so the API process may import this module.

Example::

    encode_mp4(Path("out.mp4"), frames, 24, 256, 144, audio, 16000)

    with Mp4Writer(Path("out.mp4"), 24, 1920, 1080, audio_channels=2, sample_rate=48000) as mp4:
        for chunk in decoded_chunks():  # uint8 or 0..1 float, [n, H, W, 3] or [n, 3, H, W]
            mp4.write_frames(chunk)
        mp4.write_audio(audio)
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from av.video.stream import VideoStream

VIDEO_CODEC: Final = "libx264"
PIXEL_FORMAT: Final = "yuv420p"
AUDIO_CODEC: Final = "aac"
Frames = npt.NDArray[np.uint8]  # [F, H, W, 3] RGB
Audio = npt.NDArray[np.float32]  # [channels, samples] in -1..1
FrameChunk = Any
"""``[n, H, W, 3]`` or ``[n, 3, H, W]`` frames: uint8, or floats in 0..1; numpy or torch."""
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class EncoderSettings:
    """How the encoders trade speed for size; the defaults are what takeone delivers.

    The quality settings are x264's and FFmpeg's own defaults, the ones diffusers'
    ``encode_video`` gets: CRF 23, yuv420p, AAC at 128 kb/s with the ``twoloop`` coder. Only
    the speed preset differs: ``veryfast`` instead of ``medium``. On 1080p clips it took about
    half the time at the same luma PSNR, for files about 20% larger; ``benchmarks/encode.py``
    measures both side by side (see BENCHMARKS.md). ``threads=0`` lets x264 size its
    frame-thread pool from the core count.

    Example::

        EncoderSettings(preset="medium")  # x264's default preset: smaller files, twice the time
    """

    preset: str = "veryfast"
    crf: int = 23
    threads: int = 0
    audio_bitrate: int = 128_000
    aac_coder: str = "twoloop"
    # Scaling is rare (generation sizes are close to output sizes) and bicubic costs about
    # 1 ms per 1080p frame more than bilinear: a small price next to x264's share.
    interpolation: Interpolation = Interpolation.BICUBIC


DEFAULT_SETTINGS: Final = EncoderSettings()


def encode_mp4(
    path: Path | str,
    frames: Frames,
    fps: int | Fraction,
    width: int,
    height: int,
    audio: Audio | None = None,
    sample_rate: int = 0,
    settings: EncoderSettings = DEFAULT_SETTINGS,
) -> None:
    """Encode ``frames`` (uint8 ``[F, H, W, 3]``) as exactly ``width`` x ``height`` at ``fps``.

    Frames of another size are scaled (no cropping) to exactly that size. ``audio``
    (float32 ``[channels, samples]`` in -1..1, mono or stereo) becomes an AAC track padded
    with silence or trimmed to the video's duration, so both tracks end together. Raises
    ``ValueError`` for malformed input before any file is created, and PyAV errors for codec
    failures (the temporary file is then removed).
    """
    _check_frames(frames)
    _check_size(width, height)
    _check_audio(audio, sample_rate)
    channels = 0 if audio is None else audio.shape[0]
    with Mp4Writer(path, fps, width, height, channels, sample_rate, settings) as writer:
        writer.write_frames(frames)
        if audio is not None:
            writer.write_audio(audio)


class Mp4Writer:
    """An MP4 being written: frames in chunks, audio at any time, atomic rename on success.

    Used as a context manager: leaving the block normally finishes the file (flush, audio,
    ``+faststart``, rename); leaving it with an exception closes the container and removes the
    temporary file. Audio is kept until the end because its length is fitted to the number of
    frames, which is only known then (10 s of 48 kHz stereo is under 4 MB).

    Example::

        with Mp4Writer(Path("out.mp4"), 24, 1920, 1080) as mp4:
            mp4.write_frames(chunk)
            mp4.write_frame(still, repeat=24)
    """

    def __init__(
        self,
        path: Path | str,
        fps: int | Fraction,
        width: int,
        height: int,
        audio_channels: int = 0,
        sample_rate: int = 0,
        settings: EncoderSettings = DEFAULT_SETTINGS,
    ) -> None:
        """Check the format; nothing is created on disk before the ``with`` block starts."""
        _check_size(width, height)
        _check_audio_format(audio_channels, sample_rate)
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.width, self.height = width, height
        self.audio_channels, self.sample_rate = audio_channels, sample_rate
        self.settings = settings
        self.frames_written = 0
        self._temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.part")
        self._container: OutputContainer | None = None
        self._video: VideoStream | None = None
        self._audio: AudioStream | None = None
        self._audio_parts: list[Audio] = []
        self._scratch = _FloatScratch()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary file and both streams (all must exist before the first packet)."""
        options = {"movflags": "+faststart"}
        self._container = av.open(str(self._temp), mode="w", format="mp4", container_options=options)
        try:
            self._video = _add_video_stream(self._container, self.fps, self.width, self.height, self.settings)
            if self.audio_channels:
                self._audio = _add_audio_stream(self._container, self.sample_rate, self.audio_channels, self.settings)
        except BaseException:
            self.abort()
            raise

    def write_frames(self, chunk: FrameChunk) -> None:
        """Encode every frame of ``chunk``; each is converted alone, so no chunk-sized copy is made."""
        _check_chunk(chunk)
        for frame in chunk:
            self.write_frame(frame)

    def write_frame(self, frame: Any, repeat: int = 1) -> None:
        """Encode one ``[H, W, 3]`` or ``[3, H, W]`` frame ``repeat`` times, converting it once.

        Repeats are how a clip generated at a lower frame rate reaches 24 fps without copying
        frames: x264 codes a repeated frame as almost nothing.
        """
        container, stream = self._streams()
        _check_frame(frame, repeat)
        converted = self._to_yuv(frame)
        for _ in range(repeat):
            converted.pts = self.frames_written
            container.mux(stream.encode(converted))
            self.frames_written += 1

    def write_audio(self, audio: Audio) -> None:
        """Append float32 ``[channels, samples]`` audio; it is fitted to the video when closing."""
        if not self.audio_channels:
            raise ValueError("this writer was opened without an audio track")
        _check_audio(audio, self.sample_rate)
        if audio.shape[0] != self.audio_channels:
            raise ValueError(f"audio has {audio.shape[0]} channels, the track {self.audio_channels}")
        self._audio_parts.append(finite_audio(audio))

    def close(self) -> None:
        """Finish the file and move it into place; on any failure nothing is left behind."""
        try:
            self._finish()
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close the container without letting a second error hide the first; remove the file."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001, S110 - the original error is the one worth reporting
                pass
        self._temp.unlink(missing_ok=True)

    def _finish(self) -> None:
        container, stream = self._streams()
        if self.frames_written == 0:
            raise ValueError("no frames were written: a video needs at least one frame")
        container.mux(stream.encode(None))
        if self._audio is not None:
            samples = round(self.frames_written / self.fps * self.sample_rate)
            audio = fit_audio(self._joined_audio(), samples)
            _encode_audio(container, self._audio, audio, self.sample_rate)
        self._container = None
        container.close()

    def _joined_audio(self) -> Audio:
        if not self._audio_parts:
            return np.zeros((self.audio_channels, 0), dtype=np.float32)
        return np.concatenate(self._audio_parts, axis=1)

    def _streams(self) -> tuple[OutputContainer, VideoStream]:
        if self._container is None or self._video is None:
            raise RuntimeError("the writer is not open: use it as a context manager")
        return self._container, self._video

    def _to_yuv(self, frame: Any) -> av.VideoFrame:
        """One libswscale pass: RGB to BT.709 limited-range yuv420p at the exact output size."""
        pixels = self._scratch.rgb24(frame)
        source = av.VideoFrame.from_numpy_buffer(pixels, format="rgb24")
        return source.reformat(
            self.width,
            self.height,
            PIXEL_FORMAT,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            interpolation=self.settings.interpolation,
        )


class _FloatScratch:
    """Per-frame conversion to contiguous uint8 ``[H, W, 3]``, reusing one float buffer.

    Pipelines return 0..1 floats; converting frame by frame keeps the extra memory at one
    frame instead of a float copy of the whole clip.
    """

    def __init__(self) -> None:
        self._buffer: npt.NDArray[np.float32] | None = None

    def rgb24(self, frame: Any) -> Frames:
        if _is_tensor(frame):
            return _tensor_rgb24(frame)
        array = np.asarray(frame)
        if _channels_first(array.shape):
            array = array.transpose(1, 2, 0)
        if array.dtype == np.uint8:
            return np.ascontiguousarray(array)
        return self._quantize(array)

    def _quantize(self, array: npt.NDArray[Any]) -> Frames:
        if self._buffer is None or self._buffer.shape != array.shape:
            self._buffer = np.empty(array.shape, dtype=np.float32)
        buffer = self._buffer
        np.multiply(array, 255.0, out=buffer, casting="same_kind")
        np.rint(buffer, out=buffer)
        np.clip(buffer, 0.0, 255.0, out=buffer)
        return buffer.astype(np.uint8)


def _is_tensor(value: Any) -> bool:
    """A torch tensor, recognised without importing torch (the API process must not)."""
    return hasattr(value, "detach") and hasattr(value, "is_floating_point")


def _tensor_rgb24(frame: Any) -> Frames:
    """Quantize on the tensor's own device, so a GPU frame crosses to the CPU as uint8."""
    frame = frame.detach()
    if frame.is_floating_point():
        frame = frame.float().mul(255.0).round_().clamp_(0.0, 255.0).byte()
    if _channels_first(tuple(frame.shape)):
        frame = frame.permute(1, 2, 0)
    pixels: Frames = np.ascontiguousarray(frame.contiguous().cpu().numpy())
    return pixels


def _channels_first(shape: tuple[int, ...]) -> bool:
    """``[3, H, W]`` rather than ``[H, W, 3]``; a trailing 3 wins when both could be meant."""
    return len(shape) == 3 and shape[0] == 3 and shape[-1] != 3


def _check_chunk(chunk: FrameChunk) -> None:
    shape = tuple(chunk.shape)
    layout_ok = len(shape) == 4 and (shape[-1] == 3 or shape[1] == 3)
    if not layout_ok or not _pixel_dtype(chunk):
        raise ValueError(f"a chunk must be [n, H, W, 3] or [n, 3, H, W] uint8 or float, got {chunk.dtype} {shape}")


def _check_frame(frame: Any, repeat: int) -> None:
    shape = tuple(frame.shape)
    if len(shape) != 3 or 3 not in (shape[0], shape[-1]) or not _pixel_dtype(frame):
        raise ValueError(f"a frame must be [H, W, 3] or [3, H, W] uint8 or float, got {frame.dtype} {shape}")
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")


def _pixel_dtype(chunk: FrameChunk) -> bool:
    if _is_tensor(chunk):
        return bool(chunk.is_floating_point()) or str(chunk.dtype) == "torch.uint8"
    dtype = np.dtype(chunk.dtype)
    return dtype == np.uint8 or np.issubdtype(dtype, np.floating)


def _check_frames(frames: Frames) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: a video needs at least one frame")


def _check_size(width: int, height: int) -> None:
    # yuv420p stores chroma at half resolution, so H.264 needs even dimensions.
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even, got {width}x{height}")


def finite_audio(audio: Audio) -> Audio:
    """``audio`` as float32 in -1..1 with NaN as silence and infinities at full scale: the AAC
    encoder refuses non-finite samples (``avcodec_send_frame`` returns EINVAL), which would
    fail a whole job over a few bad samples."""
    samples = np.asarray(audio, dtype=np.float32)
    if np.isfinite(samples).all():
        return samples
    return np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def _check_audio_format(channels: int, sample_rate: int) -> None:
    if channels and channels not in _LAYOUTS:
        raise ValueError(f"audio must have 1 or 2 channels, got {channels}")
    if channels and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive with audio, got {sample_rate}")


def _check_audio(audio: Audio | None, sample_rate: int) -> None:
    if audio is None:
        return
    if audio.ndim != 2 or audio.shape[0] not in _LAYOUTS:
        raise ValueError(f"audio must be [channels, samples] with 1 or 2 channels, got {audio.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive with audio, got {sample_rate}")


def _add_video_stream(
    container: OutputContainer, fps: Fraction, width: int, height: int, settings: EncoderSettings
) -> VideoStream:
    options = {"preset": settings.preset, "crf": str(settings.crf)}
    stream = container.add_stream(VIDEO_CODEC, rate=fps, options=options)
    stream.width = width
    stream.height = height
    stream.pix_fmt = PIXEL_FORMAT
    context = stream.codec_context
    # Frame threads keep every core busy; PyAV's default (slice threads) splits each frame
    # and leaves cores idle while the lookahead and bitstream writer run.
    context.thread_type = "FRAME"
    context.thread_count = settings.threads
    context.color_primaries = context.color_trc = context.colorspace = _BT709
    context.color_range = int(ColorRange.MPEG)
    return stream


def _add_audio_stream(
    container: OutputContainer, sample_rate: int, channels: int, settings: EncoderSettings
) -> AudioStream:
    options = {"aac_coder": settings.aac_coder}
    stream = container.add_stream(AUDIO_CODEC, rate=sample_rate, layout=_LAYOUTS[channels], options=options)
    stream.bit_rate = settings.audio_bitrate
    return stream


def fit_audio(audio: Audio, samples: int) -> Audio:
    """Trim or zero-pad ``audio`` ``[channels, n]`` to exactly ``samples``, clipped to -1..1."""
    fitted = np.zeros((audio.shape[0], samples), dtype=np.float32)
    keep = min(samples, audio.shape[1])
    fitted[:, :keep] = audio[:, :keep]
    return np.clip(fitted, -1.0, 1.0, out=fitted)


def _encode_audio(container: OutputContainer, stream: AudioStream, audio: Audio, sample_rate: int) -> None:
    # One planar float frame; PyAV's encoder-side resampler converts it to the AAC
    # encoder's sample format and cuts it into the encoder's fixed frame size.
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp", layout=_LAYOUTS[audio.shape[0]])
    frame.sample_rate = sample_rate
    frame.pts = 0
    frame.time_base = Fraction(1, sample_rate)
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
