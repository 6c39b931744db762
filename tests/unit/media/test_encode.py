"""encode_mp4 writes real MP4s; every check reads them back with PyAV."""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from takeone.media.encode import EncoderSettings, Mp4Writer, encode_mp4, fit_audio

RNG = np.random.default_rng(0)


def gradient_frames(count: int, width: int, height: int) -> np.ndarray:
    """Smooth moving gradients: cheap to encode, and each frame differs from the last."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    frames = [(x + y / 2 + 7 * index + np.array([0, 80, 160])) % 256 for index in range(count)]
    return np.stack(frames).astype(np.uint8)


def tone(channels: int, samples: int, sample_rate: int) -> np.ndarray:
    t = np.arange(samples, dtype=np.float32) / sample_rate
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)]).astype(np.float32)


def top_level_atoms(path: Path) -> list[str]:
    """The MP4 box types at file level, in order (a real parse, not a substring search)."""
    data = path.read_bytes()
    atoms, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        atoms.append(kind.decode("latin-1"))
        offset += size if size else len(data)
    return atoms


def open_fds_under(folder: Path) -> list[str]:
    targets = (os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
    return [target for target in targets if target.startswith(str(folder.resolve()))]


def test_video_only_is_h264_yuv420p_with_exact_frames(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    encode_mp4(out, gradient_frames(121, 256, 144), 24, 256, 144)
    with av.open(str(out)) as container:
        assert not container.streams.audio
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 144)
        assert stream.average_rate == 24
        assert float(stream.duration * stream.time_base) == pytest.approx(121 / 24)
        assert sum(1 for _ in container.decode(video=0)) == 121


def test_frames_of_another_size_are_scaled_to_the_exact_size(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    encode_mp4(out, gradient_frames(9, 160, 96), 24, 144, 256)
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape == (256, 144, 3)


def test_colors_survive_the_round_trip(tmp_path: Path) -> None:
    """RGB -> BT.709 yuv420p -> RGB stays close, so the colour matrix is tagged and used consistently."""
    out = tmp_path / "v.mp4"
    frames = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    frames[:, :, :, 0], frames[:, :, :, 1], frames[:, :, :, 2] = 200, 120, 40
    encode_mp4(out, frames, 24, 64, 64)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.colorspace == 1  # BT.709
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(decoded.astype(int) - [200, 120, 40]).max() <= 6


@pytest.mark.parametrize(("channels", "sample_rate"), [(2, 16000), (1, 24000), (2, 48000)])
def test_audio_becomes_aac_lasting_as_long_as_the_video(
    tmp_path: Path, channels: int, sample_rate: int
) -> None:
    out = tmp_path / "av.mp4"
    audio = tone(channels, sample_rate * 3, sample_rate)
    encode_mp4(out, gradient_frames(121, 128, 72), 24, 128, 72, audio, sample_rate)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.channels == channels
        assert audio.codec_context.sample_rate == sample_rate
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    # AAC adds at most one frame of encoder padding (1024 samples, plus priming that the edit list hides).
    assert 121 / 24 * sample_rate <= decoded <= 121 / 24 * sample_rate + 2048


def test_long_audio_is_trimmed_to_the_video(tmp_path: Path) -> None:
    out = tmp_path / "av.mp4"
    encode_mp4(out, gradient_frames(24, 64, 64), 24, 64, 64, tone(2, 16000 * 5, 16000), 16000)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(1.0, abs=0.07)


def test_fit_audio_pads_trims_and_clips() -> None:
    audio = np.array([[0.5, 2.0, -3.0]], dtype=np.float32)
    assert fit_audio(audio, 5).tolist() == [[0.5, 1.0, -1.0, 0.0, 0.0]]
    assert fit_audio(audio, 2).tolist() == [[0.5, 1.0]]


def test_fractional_frame_rate(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    encode_mp4(out, gradient_frames(30, 64, 64), Fraction(30000, 1001), 64, 64)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_moov_comes_before_mdat_for_progressive_playback(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    encode_mp4(out, gradient_frames(48, 128, 72), 24, 128, 72, tone(2, 32000, 16000), 16000)
    atoms = top_level_atoms(out)
    assert atoms[0] == "ftyp"
    assert atoms.index("moov") < atoms.index("mdat")


def test_existing_file_is_replaced_and_no_temporary_file_remains(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    out.write_bytes(b"old")
    encode_mp4(out, gradient_frames(5, 64, 64), 24, 64, 64)
    assert os.listdir(tmp_path) == ["v.mp4"]
    assert out.read_bytes()[4:8] == b"ftyp"


def test_codec_failure_leaves_no_file_and_closes_the_container(tmp_path: Path) -> None:
    """AAC refuses 12345 Hz when the codec opens, i.e. after the temporary file was created."""
    out = tmp_path / "v.mp4"
    with pytest.raises(av.FFmpegError):
        encode_mp4(out, gradient_frames(5, 64, 64), 24, 64, 64, tone(2, 12345, 12345), 12345)
    assert os.listdir(tmp_path) == []
    assert open_fds_under(tmp_path) == []


@pytest.mark.parametrize(
    ("frames", "width", "height"),
    [
        (np.zeros((5, 64, 64, 3), dtype=np.float32), 64, 64),
        (np.zeros((5, 64, 64), dtype=np.uint8), 64, 64),
        (np.zeros((0, 64, 64, 3), dtype=np.uint8), 64, 64),
        (np.zeros((5, 64, 64, 3), dtype=np.uint8), 63, 64),
        (np.zeros((5, 64, 64, 3), dtype=np.uint8), 64, 0),
    ],
    ids=["float-frames", "no-channels", "no-frames", "odd-width", "zero-height"],
)
def test_malformed_video_input_is_refused_before_writing(
    tmp_path: Path, frames: np.ndarray, width: int, height: int
) -> None:
    with pytest.raises(ValueError):
        encode_mp4(tmp_path / "v.mp4", frames, 24, width, height)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("audio", "sample_rate"),
    [
        (np.zeros((3, 100), dtype=np.float32), 16000),
        (np.zeros(100, dtype=np.float32), 16000),
        (np.zeros((2, 9), dtype=np.float32), 0),
    ],
    ids=["three-channels", "one-dimensional", "no-rate"],
)
def test_malformed_audio_is_refused_before_writing(
    tmp_path: Path, audio: np.ndarray, sample_rate: int
) -> None:
    with pytest.raises(ValueError):
        encode_mp4(tmp_path / "v.mp4", gradient_frames(5, 64, 64), 24, 64, 64, audio, sample_rate)
    assert os.listdir(tmp_path) == []


# -- the streaming writer --------------------------------------------------------------------


def decoded_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def test_chunks_of_any_size_make_one_video_with_every_frame(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    frames = gradient_frames(50, 128, 72)
    with Mp4Writer(out, 24, 128, 72) as writer:
        for start, stop in [(0, 1), (1, 17), (17, 17), (17, 50)]:
            writer.write_frames(frames[start:stop])
    assert writer.frames_written == 50
    decoded = decoded_rgb(out)
    assert len(decoded) == 50 and decoded[0].shape == (72, 128, 3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert os.listdir(tmp_path) == ["v.mp4"]


def test_chunked_and_whole_clip_encodes_are_identical(tmp_path: Path) -> None:
    """Chunking is invisible in the output: same settings, same bytes of video. One encoder
    thread for both: what is compared is chunking, and frame-threaded x264 on a loaded machine
    was seen to differ between two whole encodes in a full test run."""
    frames = gradient_frames(20, 64, 64)
    single = EncoderSettings(threads=1)
    encode_mp4(tmp_path / "whole.mp4", frames, 24, 64, 64, settings=single)
    with Mp4Writer(tmp_path / "chunks.mp4", 24, 64, 64, settings=single) as writer:
        for chunk in np.array_split(frames, 3):
            writer.write_frames(chunk)
    whole, chunks = decoded_rgb(tmp_path / "whole.mp4"), decoded_rgb(tmp_path / "chunks.mp4")
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunks, strict=True))


def test_float_and_channels_first_chunks_match_uint8(tmp_path: Path) -> None:
    """0..1 floats in either layout quantize like ``round(x * 255)``, numpy or torch."""
    torch = pytest.importorskip("torch")
    frames = gradient_frames(6, 64, 48)
    floats = frames.astype(np.float32) / 255.0
    chunks = {
        "uint8": frames,
        "float-hwc": floats,
        "float-chw": np.ascontiguousarray(floats.transpose(0, 3, 1, 2)),
        "tensor-chw": torch.from_numpy(floats).permute(0, 3, 1, 2),
        "tensor-uint8": torch.from_numpy(frames),
    }
    for name, chunk in chunks.items():
        with Mp4Writer(tmp_path / f"{name}.mp4", 24, 64, 48) as writer:
            writer.write_frames(chunk)
    reference = decoded_rgb(tmp_path / "uint8.mp4")
    for name in chunks:
        decoded = decoded_rgb(tmp_path / f"{name}.mp4")
        assert all(np.array_equal(a, b) for a, b in zip(reference, decoded, strict=True)), name


def test_repeated_frames_count_as_frames(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    first, second = gradient_frames(2, 64, 64)
    with Mp4Writer(out, 24, 64, 64) as writer:
        writer.write_frame(first, repeat=5)
        writer.write_frame(second, repeat=2)
    decoded = decoded_rgb(out)
    # H.264 is lossy: tell the two source frames apart by which one each decoded frame is nearer.
    nearest = [int(error(frame, second) < error(frame, first)) for frame in decoded]
    assert nearest == [0, 0, 0, 0, 0, 1, 1]
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(7 / 24)


def test_audio_in_parts_is_fitted_to_the_streamed_video(tmp_path: Path) -> None:
    out = tmp_path / "av.mp4"
    audio = tone(2, 16000 * 3, 16000)
    with Mp4Writer(out, 24, 64, 64, audio_channels=2, sample_rate=16000) as writer:
        writer.write_audio(audio[:, :5000])
        writer.write_frames(gradient_frames(48, 64, 64))
        writer.write_audio(audio[:, 5000:])
    assert len(decoded_rgb(out)) == 48
    assert audio_seconds(out) == pytest.approx(2.0, abs=0.07)


def test_declared_audio_track_without_audio_is_silence_of_the_video_length(tmp_path: Path) -> None:
    out = tmp_path / "av.mp4"
    with Mp4Writer(out, 24, 64, 64, audio_channels=1, sample_rate=16000) as writer:
        writer.write_frames(gradient_frames(24, 64, 64))
    assert audio_seconds(out) == pytest.approx(1.0, abs=0.07)


def test_error_inside_the_block_closes_and_removes_the_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="decoder failed"):
        with Mp4Writer(out, 24, 64, 64, audio_channels=2, sample_rate=16000) as writer:
            writer.write_frames(gradient_frames(60, 64, 64))  # past x264's delay: packets are out
            assert len(list(tmp_path.glob(".v.mp4.*.part"))) == 1
            raise RuntimeError("decoder failed")
    assert os.listdir(tmp_path) == ["v.mp4"] and out.read_bytes() == b"old"
    assert open_fds_under(tmp_path) == []


@pytest.mark.parametrize(
    "chunk",
    [np.zeros((2, 64, 64), dtype=np.uint8), np.zeros((2, 64, 64, 3), dtype=np.int32)],
    ids=["no-channels", "int32"],
)
def test_malformed_chunk_fails_and_leaves_nothing(tmp_path: Path, chunk: np.ndarray) -> None:
    with pytest.raises(ValueError):
        with Mp4Writer(tmp_path / "v.mp4", 24, 64, 64) as writer:
            writer.write_frames(gradient_frames(3, 64, 64))
            writer.write_frames(chunk)
    assert os.listdir(tmp_path) == [] and open_fds_under(tmp_path) == []


def test_no_frames_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        with Mp4Writer(tmp_path / "v.mp4", 24, 64, 64):
            pass
    assert os.listdir(tmp_path) == [] and open_fds_under(tmp_path) == []


def test_writer_refuses_misuse_before_creating_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Mp4Writer(tmp_path / "v.mp4", 24, 63, 64)
    with pytest.raises(ValueError):
        Mp4Writer(tmp_path / "v.mp4", 24, 64, 64, audio_channels=3, sample_rate=16000)
    with pytest.raises(RuntimeError, match="not open"):
        Mp4Writer(tmp_path / "v.mp4", 24, 64, 64).write_frames(gradient_frames(1, 64, 64))
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="without an audio track"):
        with Mp4Writer(tmp_path / "v.mp4", 24, 64, 64) as writer:
            writer.write_frames(gradient_frames(1, 64, 64))
            writer.write_audio(tone(1, 100, 16000))
    assert os.listdir(tmp_path) == []


def test_settings_reach_the_encoder(tmp_path: Path) -> None:
    """A lower CRF spends more bits: the settings are really passed to x264."""
    frames = gradient_frames(12, 128, 72) + RNG.integers(0, 16, (12, 72, 128, 3), dtype=np.uint8)
    encode_mp4(tmp_path / "hi.mp4", frames, 24, 128, 72, settings=EncoderSettings(crf=10))
    encode_mp4(tmp_path / "lo.mp4", frames, 24, 128, 72, settings=EncoderSettings(crf=40))
    assert (tmp_path / "hi.mp4").stat().st_size > 2 * (tmp_path / "lo.mp4").stat().st_size


def test_non_finite_audio_samples_do_not_fail_the_encode(tmp_path: Path) -> None:
    """AAC refuses NaN and infinities (avcodec_send_frame: EINVAL): NaN becomes silence, an
    infinity full scale, and the file is written with its audio track."""
    out = tmp_path / "nan.mp4"
    audio = tone(2, 16_000 * 5, 16_000)
    audio[:, 1_000:3_000] = np.nan
    audio[0, 5], audio[1, 7] = np.inf, -np.inf
    encode_mp4(out, gradient_frames(121, 64, 36), 24, 64, 36, audio, 16_000)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        decoded = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=-1)
    assert np.isfinite(decoded).all() and decoded.shape[-1] >= 121 / 24 * 16_000
