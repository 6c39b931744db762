"""LoRA switching on one warm worker: 20 jobs alternating 3 LoRAs, with and without compile.

    python benchmarks/lora.py                         # tiny profile on CPU, both modes
    python benchmarks/lora.py --profile ltx-2 --device cuda --modes eager,compiled

For each mode it loads the profile once, adds ``--loras`` random LoRAs (rank ``--rank``, over
every attention projection of the transformer) to a throwaway library, then renders
``--jobs`` jobs whose LoRA cycles through them (job i uses LoRA i mod 3). The *switch* is
the worker's activation of the job's LoRA before the render (fetching the file the first
time, loading the adapter, setting its scale), timed per job; the render is timed apart.

- ``eager``: adapters switched with ``set_adapters`` (what an uncompiled worker does);
- ``compiled``: the transformer's repeated blocks compiled (``compile_repeated_blocks``), and
  LoRAs hot-swapped into a worker's 4 fixed slots (what a worker with ``compile`` does); the first job
  pays the compilation, and the count of compiled graphs after it says whether a switch
  recompiled.

Prints one line per job and a summary per mode: switch p50 and max over the jobs after the
first three (each LoRA's first load is in those), and over all jobs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ATTENTION = (".to_q", ".to_k", ".to_v", ".to_out.0")


def make_library(blobs: Any, profile: Any, count: int, rank: int, weights: Path | None, folder: Path) -> list[str]:
    import torch
    from safetensors.torch import save_file

    from takeone.core.loras import LoraCatalog, LoraManifest
    from takeone.models.loras import inspect_lora, normalized_bytes, transformer_linears

    linears = transformer_linears(profile, weights)
    targets = [n for n in linears if n.endswith(ATTENTION)]
    names = []
    for i in range(count):
        generator = torch.Generator().manual_seed(i)
        state = {}
        for name in targets:
            out_features, in_features = linears[name]
            state[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, in_features, generator=generator) * 0.1
            state[f"transformer.{name}.lora_B.weight"] = torch.randn(out_features, rank, generator=generator) * 0.1
        path = folder / f"style{i}.safetensors"
        save_file(state, str(path))
        report = inspect_lora(path, linears, profile.name)
        data = normalized_bytes(path, report)
        LoraCatalog(blobs).add(LoraManifest(name=f"style{i}", profile=profile.name, size=len(data), sha256="",
                                            rank=report.rank, targets=tuple(sorted(report.modules)),
                                            layout=report.layout), data)
        names.append(f"style{i}")
    return names


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, float]:
    import torch
    import torch._dynamo.utils as dynamo_utils

    from takeone.backends.local_blobs import LocalBlobStore
    from takeone.core.loras import LoraUse
    from takeone.core.task import VideoTask
    from takeone.engine.loras import HotswapSwitcher, LoraSwitcher, adaptable_transformers
    from takeone.engine.render import render
    from takeone.models.loader import load_video_model
    from takeone.models.registry import get_profile

    torch._dynamo.reset()
    profile = get_profile(args.profile)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = LocalBlobStore(root / "data", b"")
        names = make_library(blobs, profile, args.loras, args.rank, args.weights, root)
        model = load_video_model(args.profile, args.device, args.weights)
        switcher: LoraSwitcher
        if mode == "compiled":
            for module in adaptable_transformers(model):
                module.compile_repeated_blocks(fullgraph=False)
            # A compiled worker's slots: the most a request may name (each runs in every job).
            switcher = HotswapSwitcher(model, blobs, root / "scratch", profile.name)
        else:
            switcher = LoraSwitcher(model, blobs, root / "scratch", device_slots=args.resident)
        switches: list[float] = []
        for job in range(args.jobs):
            use = LoraUse(names[job % len(names)], 0.8)
            task = VideoTask(kind="t2v", tier=args.tier, seed=job, prompt="a fox in the snow", loras=(use,))
            switch_s = switcher.activate(task.loras)
            started = time.perf_counter()
            render(model, profile, task, root / "out.mp4", lambda _d, _t: None, lambda: False)
            render_s = time.perf_counter() - started
            graphs = dynamo_utils.counters["stats"].get("unique_graphs", 0)
            switches.append(switch_s)
            print(f"{mode} job {job:2d} {use.name}: switch {switch_s * 1000:8.1f} ms, render {render_s:7.2f} s,"
                  f" compiled graphs {graphs}", flush=True)
    warm = switches[len(names):] or switches
    summary = {"p50_ms": statistics.median(warm) * 1000, "max_ms": max(warm) * 1000,
               "all_p50_ms": statistics.median(switches) * 1000, "all_max_ms": max(switches) * 1000}
    print(f"{mode}: switch after each LoRA's first load: p50 {summary['p50_ms']:.1f} ms, max"
          f" {summary['max_ms']:.1f} ms; all {args.jobs} jobs: p50 {summary['all_p50_ms']:.1f} ms,"
          f" max {summary['all_max_ms']:.1f} ms", flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--tier", default="fast")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--loras", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--resident", type=int, default=8,
                        help="adapters kept on the device by the eager mode (a worker's default)")
    parser.add_argument("--modes", default="eager,compiled")
    args = parser.parse_args()
    import torch

    print(f"profile {args.profile} on {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads,"
          f" {args.jobs} jobs over {args.loras} LoRAs of rank {args.rank}")
    for mode in args.modes.split(","):
        run_mode(mode, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
