"""MP4 encoding: takeone's streaming encoder against diffusers' own export path, side by side.

    python benchmarks/encode.py                      # 121- and 241-frame 1920x1080 clips
    python benchmarks/encode.py --frames 48 --size 640x360 --repeats 3

One deterministic synthetic clip per frame count (moving sine gradients plus grain, stereo
audio at 24 kHz, the LTX-2 vocoder's rate) is written once to a temporary ``.npy``. Every
(clip, encoder) pair then runs in a fresh subprocess that imports the same libraries and loads
the same clip before the clock starts, so the timings and peak memories differ only by the
encoder. Peak memory is the kernel's high-water mark (VmHWM) of the subprocess, reset after
loading, so C allocations (x264, swscale) count and the clip itself does not.

Encoders:

- ``diffusers``: ``diffusers.utils.export_utils.encode_video`` (what the LTX-2 pipeline docs
  call; 0.42.1's ``pipelines/ltx2/export_utils.py`` holds only an HDR helper), with x264's
  defaults: preset medium, CRF 23, yuv420p, PyAV's default slice threading; AAC at
  FFmpeg's default 128 kb/s stereo with the default ``twoloop`` coder. ``export_to_video``
  needs imageio or OpenCV, neither of which takeone depends on, so it is not run.
- ``takeone-matched``: :class:`takeone.media.encode.Mp4Writer` with those same settings
  (libx264, medium, CRF 23, yuv420p, AAC 128 kb/s ``twoloop``), fed 16-frame chunks. It still
  writes takeone's format: BT.709 tags and ``+faststart`` (an extra pass over the file).
- ``takeone``: takeone's delivery settings (``veryfast``, CRF 20, AAC ``fast``): a speed
  choice, not equal settings, so it is reported beside the matched figure with PSNR and size.

The last line is the equal-settings figure: ``encode speed-up vs diffusers: 1.23x``.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ENCODERS = ("diffusers", "takeone-matched", "takeone")
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
    psnr_db: float
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
    """Import everything, load the clip, reset the high-water mark, then time one encode."""
    import torch  # noqa: F401 - both paths pay the same imports before the baseline
    from diffusers.utils.export_utils import encode_video  # noqa: F401

    import takeone.media.encode  # noqa: F401

    frames = np.load(clip_path)
    audio = np.load(audio_path)
    clip: npt.NDArray[Any] = frames if kind == "uint8" else frames.astype(np.float32) / 255.0
    _reset_high_water_mark()
    baseline = _status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    ENCODE[encoder](clip, audio, out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    peak = _status_mb("VmHWM")
    psnr, decoded = quality(out, frames)
    count, height, width, _ = frames.shape
    return Run(encoder, count, width, height, kind, round(seconds, 3), round(cpu, 3), round(baseline, 1),
               round(peak, 1), round(peak - baseline, 1), round(out.stat().st_size / 2**20, 2),
               round(psnr, 2), decoded)


def encode_diffusers(clip: npt.NDArray[Any], audio: npt.NDArray[np.float32], out: Path) -> None:
    """diffusers' documented LTX-2 export: uint8 goes in as a tensor, 0..1 floats as numpy."""
    import torch
    from diffusers.utils.export_utils import encode_video

    video = torch.from_numpy(clip) if clip.dtype == np.uint8 else clip
    encode_video(video, fps=FPS, output_path=str(out), audio=torch.from_numpy(audio),
                 audio_sample_rate=SAMPLE_RATE)


def encode_takeone(clip: npt.NDArray[Any], audio: npt.NDArray[np.float32], out: Path,
                   matched: bool = False) -> None:
    """The streaming writer, fed chunks the way a chunked VAE decode would hand them over."""
    from takeone.media.encode import EncoderSettings, Mp4Writer

    settings = EncoderSettings(preset="medium", crf=23, aac_coder="twoloop") if matched else EncoderSettings()
    _, height, width, _ = clip.shape
    with Mp4Writer(out, FPS, width, height, audio.shape[0], SAMPLE_RATE, settings) as writer:
        for start in range(0, len(clip), CHUNK):
            writer.write_frames(clip[start : start + CHUNK])
        writer.write_audio(audio)


def encode_takeone_matched(clip: npt.NDArray[Any], audio: npt.NDArray[np.float32], out: Path) -> None:
    encode_takeone(clip, audio, out, matched=True)


Encoder = Callable[[npt.NDArray[Any], npt.NDArray[np.float32], Path], None]
ENCODE: dict[str, Encoder] = {
    "diffusers": encode_diffusers,
    "takeone-matched": encode_takeone_matched,
    "takeone": encode_takeone,
}


def quality(path: Path, source: npt.NDArray[np.uint8]) -> tuple[float, int]:
    """RGB PSNR against the source over every ``PSNR_EVERY``-th frame, and the decoded count.

    End to end, as a viewer sees it: the decoder converts back with the matrix the file is
    tagged with (BT.709 for takeone, untagged BT.601 for diffusers). 4:2:0 chroma loss on the
    grain caps it near 36 dB for every encoder, so it shows parity, not fine differences.
    """
    import av

    errors: list[float] = []
    count = 0
    with av.open(str(path)) as container:
        for count, frame in enumerate(container.decode(video=0), start=1):
            if (count - 1) % PSNR_EVERY == 0:
                decoded = frame.to_ndarray(format="rgb24").astype(np.float32)
                errors.append(float(np.mean((decoded - source[count - 1]) ** 2)))
    return 10 * np.log10(255.0**2 / max(statistics.fmean(errors), 1e-9)), count


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_high_water_mark() -> None:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so the clip load does not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the peak includes loading the clip; the baseline column shows how much


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
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


def measure(frame_counts: list[int], width: int, height: int, repeats: int, kind: str) -> list[Run]:
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for frames in frame_counts:
            clip, audio = folder / f"clip{frames}.npy", folder / f"audio{frames}.npy"
            make_clip(clip, frames, width, height)
            np.save(audio, make_audio(frames))
            for _ in range(repeats):  # interleaved, so background load hits every encoder alike
                for encoder in ENCODERS:
                    runs.append(run_child(encoder, clip, audio, folder / f"{encoder}.mp4", kind))
                    print(_row(runs[-1]), flush=True)
            clip.unlink()
    return runs


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Median per (encoder, clip); speed-ups are total diffusers time over total takeone time."""
    medians: dict[str, dict[int, Run]] = {}
    for encoder in ENCODERS:
        for frames in sorted({r.frames for r in runs}):
            group = [r for r in runs if r.encoder == encoder and r.frames == frames]
            medians.setdefault(encoder, {})[frames] = sorted(group, key=lambda r: r.seconds)[len(group) // 2]
    total = {e: sum(r.seconds for r in by_frames.values()) for e, by_frames in medians.items()}
    return {
        "medians": {e: [asdict(r) for r in by_frames.values()] for e, by_frames in medians.items()},
        "speedup_equal_settings": round(total["diffusers"] / total["takeone-matched"], 2),
        "speedup_takeone_settings": round(total["diffusers"] / total["takeone"], 2),
    }


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return {"cores": os.cpu_count(), "cpu": model.group(1) if model else platform.processor(),
            "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0],
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


HEADER = f"{'encoder':<16}{'frames':>7}{'input':>7}{'seconds':>9}{'cpu s':>8}{'peak MB':>9}{'extra MB':>10}{'file MB':>9}{'PSNR dB':>9}"


def _row(r: Run) -> str:
    return (f"{r.encoder:<16}{r.frames:>7}{r.input:>7}{r.seconds:>9.2f}{r.cpu_seconds:>8.1f}{r.peak_mb:>9.0f}"
            f"{r.extra_mb:>10.0f}{r.file_mb:>9.1f}{r.psnr_db:>9.2f}")


def _size(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split("x"))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[121, 241])
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=1, help="runs per encoder and clip (median kept)")
    parser.add_argument("--input", choices=["uint8", "float"], default="uint8",
                        help="uint8 [F,H,W,3] (takeone's Video contract) or 0..1 float32 (output_type='np')")
    parser.add_argument("--json", type=Path, default=RESULTS)
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
    runs = measure(args.frames, width, height, args.repeats, args.input)
    result = {"machine": machine(), "runs": [asdict(r) for r in runs], **summarize(runs)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"takeone settings (veryfast, CRF 20) speed-up vs diffusers defaults: {result['speedup_takeone_settings']:.2f}x")
    print(f"encode speed-up vs diffusers: {result['speedup_equal_settings']:.2f}x")


if __name__ == "__main__":
    main()
