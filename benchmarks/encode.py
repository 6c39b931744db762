"""MP4 encoding: takeone's streaming encoder against diffusers' own export path, side by side.

    python benchmarks/encode.py                      # 121- and 241-frame 1920x1080 clips
    python benchmarks/encode.py --frames 48 --size 640x360 --repeats 3
    python benchmarks/encode.py --input stream --frames 241   # host memory from decoder to MP4

One deterministic synthetic clip per frame count (moving sine gradients plus grain, stereo
audio at 24 kHz, the LTX-2 vocoder's rate) is written once to a temporary ``.npy``. Every
(clip, encoder) pair then runs in a fresh subprocess that imports the same libraries and loads
the same clip before the clock starts, so the timings and peak memories differ only by the
encoder. Peak memory is the kernel's high-water mark (VmHWM) of the subprocess, reset after
loading, so C allocations (x264, swscale) count and the clip itself does not.

Encoders:

- ``diffusers``: ``diffusers.utils.export_utils.encode_video`` (what the LTX-2 pipeline docs
  call to write video with audio), with x264's and FFmpeg's defaults: preset medium, CRF 23,
  yuv420p, PyAV's default threading; AAC at 128 kb/s stereo with the default ``twoloop`` coder.
- ``diffusers-export``: ``diffusers.utils.export_to_video`` (imageio-ffmpeg: an ``ffmpeg``
  subprocess fed raw RGB through a pipe), with its defaults: ``quality=5`` (CRF 25), preset
  medium, no audio track (it cannot write one), except ``macro_block_size=1`` so 1080 rows
  stay 1080 (the default scales them to 1088). Needs ``pip install -e ".[bench]"``; skipped
  with a note otherwise. Its ``ffmpeg`` child's CPU time and peak memory are added to the row.
- ``takeone-medium``: :class:`takeone.media.encode.Mp4Writer` at diffusers' settings including
  the preset, fed 16-frame chunks: it shows that the x264 work itself is the same.
- ``takeone``: the same writer with takeone's delivery settings: the same quality settings
  (CRF 23, yuv420p, AAC 128 kb/s ``twoloop``) with x264's ``veryfast`` preset, fed 16-frame
  chunks. Quality is checked, not assumed: ``Y PSNR`` is the luma PSNR of every 8th decoded
  frame against the source converted with the matrix the file is tagged with (the encoder's
  loss alone), ``RGB PSNR`` the end-to-end figure a viewer sees (4:2:0 chroma loss on the
  grain caps it near 36 dB for every encoder).

Each encoder's time is given as min / median / max over ``--repeats`` runs per clip (summed
over the clips), and each speed-up three ways: by the fastest runs, by the medians and by
the slowest runs. The last line is takeone against ``diffusers`` (``encode_video``) at equal
quality settings, by the medians, with the other two beside it:
``encode speed-up vs diffusers (by median; fastest runs 2.03x, slowest runs 1.60x): 1.74x``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ENCODERS = ("diffusers", "diffusers-export", "takeone-medium", "takeone")
FPS = 24
SAMPLE_RATE = 24_000
CHUNK = 16
PSNR_EVERY = 8
RESULTS = Path(__file__).resolve().parent / "results" / "encode.json"


@dataclass(frozen=True)
class Run:
    """One encoder on one clip, measured in its own process."""

    encoder: str
    frames: int
    width: int
    height: int
    input: str
    seconds: float
    cpu_seconds: float
    baseline_mb: float
    peak_mb: float
    extra_mb: float
    file_mb: float
    y_psnr_db: float
    rgb_psnr_db: float
    decoded_frames: int


# -- the clip -----------------------------------------------------------------------------------


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    """Moving sine gradients with per-pixel grain: smooth motion x264 can predict, plus the
    noise that keeps it honest. Deterministic; written frame by frame to a memory-mapped file."""
    clip = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(frames, height, width, 3))
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    grain = np.random.default_rng(0).integers(0, 12, size=(height, width, 3), dtype=np.uint8)
    for index in range(frames):
        phase = index / 48.0
        for channel in range(3):
            wave = np.sin(2 * np.pi * (x * (1 + channel) + phase)) * np.cos(2 * np.pi * (y * (2 - channel / 2) - phase))
            clip[index, :, :, channel] = (wave * 110 + 128).astype(np.uint8)
        clip[index] += np.roll(grain, 5 * index, axis=(0, 1))
    clip.flush()


def make_audio(frames: int) -> npt.NDArray[np.float32]:
    """Stereo tones with a little noise, exactly as long as the clip."""
    samples = round(frames / FPS * SAMPLE_RATE)
    t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
    rng = np.random.default_rng(1)
    tones = [0.4 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(samples) for f in (220.0, 330.0)]
    return np.stack(tones).astype(np.float32)


# -- one measured run (in a child process) ------------------------------------------------------


def child(encoder: str, clip_path: Path, audio_path: Path, out: Path, kind: str) -> Run:
    """Import everything, load the clip, reset the high-water mark, then time one encode.

    CPU time and peak memory include child processes (``export_to_video``'s ffmpeg): the
    peak is this process's growth plus the largest child's resident size, an upper bound.
    With ``kind="stream"`` nothing is loaded before the clock: the clip arrives as a decoder
    hands it over (whole for diffusers, whose pipelines return whole clips; in chunks for
    takeone), so the peak includes every frame held at once.
    """
    import torch  # noqa: F401 - every path pays the same imports before the baseline
    from diffusers.utils.export_utils import encode_video  # noqa: F401

    import takeone.media.encode  # noqa: F401

    audio = np.load(audio_path)
    if kind == "stream":
        source, clip = np.load(clip_path, mmap_mode="r"), None  # pages are read during the encode
    else:
        source = np.load(clip_path)
        clip = _loaded(source, kind, encoder)
    _reset_high_water_mark()
    baseline = _status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    ENCODE[encoder](_decoded(clip_path, source, encoder) if clip is None else clip, audio, out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    peak = _status_mb("VmHWM") + _children_peak_mb()
    y_psnr, rgb_psnr, decoded = quality(out, source)
    count, height, width, _ = source.shape
    return Run(encoder, count, width, height, kind, round(seconds, 3), round(cpu, 3), round(baseline, 1),
               round(peak, 1), round(peak - baseline, 1), round(out.stat().st_size / 2**20, 2),
               round(y_psnr, 2), round(rgb_psnr, 2), decoded)


def _loaded(source: npt.NDArray[np.uint8], kind: str, encoder: str) -> Any:
    """The whole clip in memory before the clock, as the encoder's caller would hold it."""
    if kind == "float":
        return source.astype(np.float32) / 255.0
    return _pil_frames(source) if encoder == "diffusers-export" else source


class ChunkedClip:
    """A clip read from disk one slice at a time, as a chunked VAE decode hands it over."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...]) -> None:
        self.path, self.offset, self.shape = path, offset, shape
        self._frame_bytes = int(np.prod(shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, window: slice) -> npt.NDArray[np.uint8]:
        start, stop, _ = window.indices(self.shape[0])
        count = max(0, stop - start) * self._frame_bytes
        data = np.fromfile(self.path, np.uint8, count, offset=self.offset + start * self._frame_bytes)
        return data.reshape(-1, *self.shape[1:])


def _decoded(clip_path: Path, source: Any, encoder: str) -> Any:
    """``--input stream``: what each path holds when the decoder hands the clip over."""
    if encoder.startswith("takeone"):
        return ChunkedClip(clip_path, int(source.offset), tuple(source.shape))
    whole = ChunkedClip(clip_path, int(source.offset), tuple(source.shape))[:]
    return _pil_frames(whole) if encoder == "diffusers-export" else whole


def _pil_frames(frames: npt.NDArray[np.uint8]) -> list[Any]:
    from PIL import Image

    return [Image.fromarray(frame) for frame in frames]


def encode_diffusers(clip: Any, audio: npt.NDArray[np.float32], out: Path) -> None:
    """diffusers' documented LTX-2 export: uint8 goes in as a tensor, 0..1 floats as numpy."""
    import torch
    from diffusers.utils.export_utils import encode_video

    video = torch.from_numpy(clip) if clip.dtype == np.uint8 else clip
    encode_video(video, fps=FPS, output_path=str(out), audio=torch.from_numpy(audio),
                 audio_sample_rate=SAMPLE_RATE)


def encode_diffusers_export(clip: Any, audio: npt.NDArray[np.float32], out: Path) -> None:
    """diffusers' generic export: a list of 0..1 float frames or PIL images, no audio."""
    from diffusers.utils.export_utils import export_to_video

    # macro_block_size=1 keeps 1080 rows; the default (16) would scale every frame to 1088.
    export_to_video(list(clip), output_video_path=str(out), fps=FPS, macro_block_size=1)


def encode_takeone(clip: Any, audio: npt.NDArray[np.float32], out: Path, preset: str | None = None) -> None:
    """The streaming writer, fed chunks the way a chunked VAE decode hands them over."""
    from dataclasses import replace

    from takeone.media.encode import DEFAULT_SETTINGS, Mp4Writer

    settings = replace(DEFAULT_SETTINGS, preset=preset) if preset else DEFAULT_SETTINGS
    _, height, width, _ = clip.shape
    with Mp4Writer(out, FPS, width, height, audio.shape[0], SAMPLE_RATE, settings) as writer:
        for start in range(0, len(clip), CHUNK):
            writer.write_frames(clip[start : start + CHUNK])
        writer.write_audio(audio)


def encode_takeone_medium(clip: Any, audio: npt.NDArray[np.float32], out: Path) -> None:
    encode_takeone(clip, audio, out, preset="medium")


Encoder = Callable[[Any, npt.NDArray[np.float32], Path], None]
ENCODE: dict[str, Encoder] = {
    "diffusers": encode_diffusers,
    "diffusers-export": encode_diffusers_export,
    "takeone-medium": encode_takeone_medium,
    "takeone": encode_takeone,
}


def available_encoders() -> tuple[str, ...]:
    """Every encoder whose libraries are installed (``export_to_video`` needs imageio-ffmpeg)."""
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        print("note: diffusers-export skipped: pip install -e '.[bench]' for imageio-ffmpeg", file=sys.stderr)
        return tuple(e for e in ENCODERS if e != "diffusers-export")
    return ENCODERS


def quality(path: Path, source: npt.NDArray[np.uint8]) -> tuple[float, float, int]:
    """Luma and RGB PSNR against the source over every ``PSNR_EVERY``-th frame, and the count.

    Luma is compared with the source converted by the matrix the file is tagged with (BT.709
    for takeone, untagged means FFmpeg's BT.601 for diffusers), so it measures the encoder's
    loss alone. RGB is end to end, as a viewer sees it, chroma subsampling included.
    """
    import av

    luma: list[float] = []
    rgb: list[float] = []
    count = 0
    with av.open(str(path)) as container:
        for count, frame in enumerate(container.decode(video=0), start=1):
            if (count - 1) % PSNR_EVERY:
                continue
            original = source[count - 1]
            decoded = frame.to_ndarray(format="rgb24").astype(np.float32)
            rgb.append(float(np.mean((decoded - original) ** 2)))
            luma.append(float(np.mean((_luma(frame) - _source_luma(original, frame)) ** 2)))
    return _psnr(luma), _psnr(rgb), count


def _luma(frame: Any) -> npt.NDArray[np.float32]:
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width].astype(np.float32)


def _source_luma(original: npt.NDArray[np.uint8], decoded: Any) -> npt.NDArray[np.float32]:
    import av
    from av.video.reformatter import Colorspace

    tagged_709 = decoded.colorspace == 1
    space = Colorspace.ITU709 if tagged_709 else Colorspace.ITU601
    converted = av.VideoFrame.from_ndarray(original, format="rgb24").reformat(format="yuv420p", dst_colorspace=space)
    return _luma(converted)


def _psnr(errors: list[float]) -> float:
    return float(10 * np.log10(255.0**2 / max(statistics.fmean(errors), 1e-9)))


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _children_peak_mb() -> float:
    """The largest finished child's peak resident size (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _reset_high_water_mark() -> None:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so the clip load does not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the peak includes loading the clip; the baseline column shows how much


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match is not None, field
    return int(match.group(1)) / 1024


# -- the parent: runs, table, JSON --------------------------------------------------------------


def run_child(encoder: str, clip: Path, audio: Path, out: Path, kind: str) -> Run:
    cmd = [sys.executable, __file__, "--child", encoder, "--clip", str(clip), "--audio", str(audio),
           "--out", str(out), "--input", kind]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{encoder} failed:\n{done.stderr[-3000:]}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def measure(frame_counts: list[int], width: int, height: int, repeats: int, kind: str,
            encoders: tuple[str, ...]) -> list[Run]:
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for frames in frame_counts:
            clip, audio = folder / f"clip{frames}.npy", folder / f"audio{frames}.npy"
            make_clip(clip, frames, width, height)
            np.save(audio, make_audio(frames))
            for _ in range(repeats):  # interleaved, so background load hits every encoder alike
                for encoder in encoders:
                    runs.append(run_child(encoder, clip, audio, folder / f"{encoder}.mp4", kind))
                    print(_row(runs[-1]), flush=True)
            clip.unlink()
    return runs


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Min, median and max per (encoder, clip); a speed-up is the other encoder's total time
    over takeone's, taken with the same statistic on both sides."""
    picked: dict[str, dict[str, dict[int, Run]]] = {"min": {}, "median": {}, "max": {}}
    for encoder in dict.fromkeys(r.encoder for r in runs):
        for frames in sorted({r.frames for r in runs}):
            group = sorted((r for r in runs if r.encoder == encoder and r.frames == frames), key=lambda r: r.seconds)
            for stat, run in (("min", group[0]), ("median", group[len(group) // 2]), ("max", group[-1])):
                picked[stat].setdefault(encoder, {})[frames] = run
    totals = {stat: {e: sum(r.seconds for r in by_frames.values()) for e, by_frames in chosen.items()}
              for stat, chosen in picked.items()}
    return {
        "medians": {e: [asdict(r) for r in by_frames.values()] for e, by_frames in picked["median"].items()},
        "seconds": {e: {stat: round(totals[stat][e], 3) for stat in totals} for e in totals["median"]},
        "speedups": {e: round(t / totals["median"]["takeone"], 2) for e, t in totals["median"].items()
                     if e != "takeone"},
        "speedups_by": {stat: {e: round(t / total["takeone"], 2) for e, t in total.items() if e != "takeone"}
                        for stat, total in totals.items()},
    }


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return {"cores": os.cpu_count(), "cpu": model.group(1) if model else platform.processor(),
            "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0],
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


HEADER = (f"{'encoder':<18}{'frames':>7}{'input':>7}{'seconds':>9}{'cpu s':>8}{'peak MB':>9}{'extra MB':>10}"
          f"{'file MB':>9}{'Y PSNR':>8}{'RGB PSNR':>10}")


def _row(r: Run) -> str:
    return (f"{r.encoder:<18}{r.frames:>7}{r.input:>7}{r.seconds:>9.2f}{r.cpu_seconds:>8.1f}{r.peak_mb:>9.0f}"
            f"{r.extra_mb:>10.0f}{r.file_mb:>9.1f}{r.y_psnr_db:>8.2f}{r.rgb_psnr_db:>10.2f}")


def _size(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split("x"))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[121, 241])
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=3, help="runs per encoder and clip (min, median, max)")
    parser.add_argument("--input", choices=["uint8", "float", "stream"], default="uint8",
                        help="uint8 [F,H,W,3] (takeone's Video contract), 0..1 float32 (output_type='np'), "
                             "or stream: uint8 read from disk during the encode, whole or in chunks")
    parser.add_argument("--json", type=Path, help="default: results/encode.json, or encode-<input>.json")
    parser.add_argument("--child", choices=ENCODERS, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asdict(child(args.child, args.clip, args.audio, args.out, args.input))))
        return
    print(HEADER)
    width, height = args.size
    runs = measure(args.frames, width, height, args.repeats, args.input, available_encoders())
    result = {"machine": machine(), "runs": [asdict(r) for r in runs], **summarize(runs)}
    out = args.json or (RESULTS if args.input == "uint8" else RESULTS.with_name(f"encode-{args.input}.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'encoder':<18}{'seconds min':>12}{'median':>8}{'max':>8}   (summed over the clips)")
    for encoder, seconds in result["seconds"].items():
        print(f"{encoder:<18}{seconds['min']:>12.2f}{seconds['median']:>8.2f}{seconds['max']:>8.2f}")
    by = result["speedups_by"]
    for encoder in ("takeone-medium", "diffusers-export", "diffusers"):
        if encoder in by["median"]:
            line = (f"speed-up vs {encoder} (by median; fastest runs {by['min'][encoder]:.2f}x,"
                    f" slowest runs {by['max'][encoder]:.2f}x): {by['median'][encoder]:.2f}x")
            print(("encode " if encoder == "diffusers" else "takeone ") + line)


if __name__ == "__main__":
    main()
