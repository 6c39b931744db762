"""The first GPU run in one short command: does ltx-2 work at full size, and how fast?

    python3 benchmarks/gpu_proof.py --out proof            # one H100/H200, under 9 minutes
    python3 benchmarks/gpu_proof.py --cpu-smoke --out p    # anywhere: tiny models, seconds (CI)

On a machine without a package index, ``benchmarks/device_wheels.py`` prints the one command
that installs the wheels it lacks and runs this. With full-size random weights (the weights
cannot be downloaded where this runs; timing does not depend on their values), cheapest
figures first, so that a run cut short still says the most it can:

1. ``environment``: Python, torch, CUDA, diffusers, transformers, torchao, Triton and PyAV
   versions (each import tried on its own: a failing one is recorded, not fatal), the GPU and
   its free memory, the C compiler (Triton and inductor need one), the attention backend;
2. ``build``: the full-size components (gpu_generate.py's builders; one DiT serves as
   distilled and full, since neither case runs the full one; Gemma is stubbed only if the
   card is short of memory), with the seconds it took and free memory before and after;
3. ``plain``: the plain bf16 diffusers pipeline calls of the first case (no speed-up);
4. ``speed-ups``: fp8 and the attention backend, no compile: a tiny warm-up of each path
   first (a kernel that fails there is taken out, with the reason), then each case once;
5. ``compile``: the profile's regional compile, warmed up on the paths these cases use, one
   line per warm-up generation (each is a graph to compile: a path at a size); tried even
   when step 4 failed, since it builds its own model over the components;
6. ``compiled``: each case twice, the second run reported (the first may still tune);
7. ``mp4``: the delivered files opened with PyAV: frame count, fps, exact size, audio sample
   rate and length against the recipe;
8. ``batch``: the distilled fast tier (text to video, 5 s, 720p, both stages) as one job
   alone, then ``--batch`` such jobs (their own prompts and seeds) in one batched run, each
   decoded and encoded to its own MP4, uncompiled (a compiled graph would recompile for the
   batch's shape); records both times and the jobs-per-second ratio.
9. ``loras``: ``--loras`` random LoRAs (rank 16 over the video self-attention projections
   of the DiT) kept resident by the worker's switcher, uncompiled (``set_adapters``); a
   switch to each in turn, twice round (the first round loads them: the second is the
   warm switch a job pays), then the first case's recipe with a LoRA active, to see that a
   LoRA job runs at full size;
10. ``gpus``: on a machine with more than one GPU, one job on a group of 1 GPU and on a group
   of all of them (``--gpus-per-job``, ``--parallel auto``), seconds each; on one GPU it
   records "one GPU here". It runs the ``tiny`` profile: it proves the group path and its
   overhead on GPUs, not full-size scaling, which a multi-GPU run of ``takeone serve
   --gpus-per-job N`` with real weights still has to measure.

Every step runs in its own try/except: an error is written into ``DIR/proof.json`` (type,
message and the end of the traceback) and the next step that can still run does. The JSON is
rewritten after every step. At ``--deadline`` seconds (default 540) a watchdog writes what
there is, marked ``"status": "deadline"``, and exits with status 3; otherwise the status is
``"complete"`` (exit 0) or ``"errors"`` (exit 1). The last line is one figure: the last case
compiled (or, failing that, its last measured path), end to end.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import gpu_generate as gg  # the script's folder is on sys.path when it is run

# (key, label, task fields, transformer-only floor in s from models.md)
CASES: tuple[tuple[str, str, dict[str, Any], float], ...] = (
    ("fast-i2v-5s", "fast i2v 5 s 720p", {"tier": "fast", "image": True}, 3.1),
    ("standard-t2v-audio-5s", "standard t2v 5 s 1080p audio", {"tier": "standard", "audio": True}, 9.2),
)
DEADLINE_EXIT = 3
ERRORS_EXIT = 1
FAILING_BACKEND = "proof_fail"
MODULES = ("torch", "diffusers", "transformers", "torchao", "triton", "av")
# An AAC track may run past the video by up to about two frames of 1024 samples (priming, padding).
AUDIO_SLACK_SAMPLES = 2048


class Proof:
    """The JSON document, rewritten whole (atomically) after every step."""

    def __init__(self, out: Path, mode: str) -> None:
        self.out = out
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.document: dict[str, Any] = {
            "benchmark": "gpu_proof", "mode": mode, "status": "running",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "steps": [], "cases": {},
            "errors": [],
        }  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        self._write()

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 2)

    def step(self, name: str, **fields: Any) -> None:
        """Record one finished step, print its line, rewrite the JSON."""
        with self.lock:
            self.document["steps"].append({"step": name, "at_s": self.elapsed(), **fields})
            self._write()
        detail = ", ".join(f"{key}={value}" for key, value in fields.items() if not isinstance(value, dict | list))
        print(f"[{self.elapsed():7.1f} s] {name}: {detail}", flush=True)

    def error(self, name: str, exc: BaseException) -> None:
        """Record that step ``name`` failed, with why, and go on."""
        lines = traceback.format_exception(exc)
        entry = {"step": name, "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": "".join(lines)[-4000:]}
        with self.lock:
            self.document["errors"].append(entry)
        self.step(f"{name} FAILED", error=entry["error"][:300])

    def case(self, key: str, path: str, run: dict[str, Any]) -> None:
        with self.lock:
            self.document["cases"].setdefault(key, {})[path] = run
        self.step(f"{key} {path}", end_to_end_s=run["end_to_end_s"], peak_gib=run["peak_gib"])

    def finish(self, status: str) -> None:
        with self.lock:
            self.document["status"] = status
            self.document["total_s"] = self.elapsed()
            self._write()

    def _write(self) -> None:
        target = self.out / "proof.json"
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.document, indent=2, default=str) + "\n")
        os.replace(temporary, target)


def start_watchdog(proof: Proof, deadline_s: float) -> None:
    """At the deadline: write what there is, say so, and end the process at once."""

    def expire() -> None:
        proof.finish("deadline")
        print(f"deadline of {deadline_s:g} s reached: wrote {proof.out / 'proof.json'}", flush=True)
        os._exit(DEADLINE_EXIT)

    timer = threading.Timer(deadline_s, expire)
    timer.daemon = True
    timer.start()


def environment(device: Any) -> dict[str, Any]:
    """Versions, memory, compiler and attention backend: what decides whether a run can work."""
    import torch

    info: dict[str, Any] = {"python": platform.python_version()}
    problems = {}
    for name in MODULES:
        info[name], problem = _version(name)
        if problem:
            problems[name] = problem
    if problems:
        info["import_errors"] = problems
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        info.update(gpu=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                    cuda=torch.version.cuda, free_gib=round(free / gg.GIB, 1),
                    total_gib=round(total / gg.GIB, 1))  # fmt: skip
    else:
        info.update(gpu=None, cpu=platform.processor() or platform.machine())
    from takeone.models.outlook import c_compiler

    info["c_compiler"] = c_compiler()
    try:
        from takeone.models.ltx2.speedups import SpeedupReport, resolve_attention_backend

        info["attention_backend"] = resolve_attention_backend("auto", device, SpeedupReport()) or "native SDPA"
    except Exception as exc:  # noqa: BLE001 - recorded: the build step says whether it matters
        info["attention_backend"] = f"unknown ({type(exc).__name__}: {exc})"
    return info


def _version(module: str) -> tuple[str | None, str | None]:
    """``(version, None)``, or ``(None, why)`` when the import fails (absent or broken)."""
    try:
        return str(importlib.import_module(module).__version__), None
    except Exception as exc:  # noqa: BLE001 - absent or broken: either way it is not usable
        return None, f"{type(exc).__name__}: {exc}"[:300]


def free_gib(device: Any) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.mem_get_info(device)[0] / gg.GIB, 1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for proof.json and the MP4s")
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds after which it stops itself")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny models on CPU: checks the script works")
    parser.add_argument("--cases", default=",".join(key for key, *_ in CASES), help="comma-separated case keys")
    parser.add_argument("--compile-backend", default=None,
                        help=f"torch.compile backend instead of the profile's ({FAILING_BACKEND!r}: one that "
                             "raises, to check the fallback)")  # fmt: skip
    parser.add_argument("--attention-backend", default=None,
                        help="diffusers attention backend instead of the profile's (e.g. _native_cudnn, flash)")
    parser.add_argument("--fail-step", default=None, help="make this step raise (checks the error path)")
    parser.add_argument("--batch", type=int, default=4, help="jobs in the batched fast-tier run (0: skip it)")
    parser.add_argument("--loras", type=int, default=8, help="LoRAs kept resident in the LoRA step (0: skip it)")
    return parser.parse_args(argv)


@dataclasses.dataclass
class Session:
    """What the steps share."""

    args: argparse.Namespace
    proof: Proof
    device: Any = None
    profile: Any = None
    components: Any = None
    timer: Any = None
    folder: Path = dataclasses.field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="takeone-gpu-proof-")))
    plans: list[tuple[str, Any, Any]] = dataclasses.field(default_factory=list)
    model: Any = None
    delivered: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)


def step(session: Session, name: str, work: Callable[[], None]) -> bool:
    """Run one step; on an error record it and return False (the caller decides what still runs)."""
    try:
        if session.args.fail_step == name:
            raise RuntimeError(f"step {name} failed on purpose (--fail-step)")
        work()
        return True
    except Exception as exc:  # noqa: BLE001 - every failure is recorded; the proof goes on where it can
        session.proof.error(name, exc)
        return False


def setup(session: Session) -> None:
    """Device and profile (with the compile backend asked for), then the environment step."""
    import torch

    from takeone.models.registry import get_profile

    args = session.args
    profile = get_profile("ltx-2")
    if args.cpu_smoke:
        torch.set_num_threads(1)  # tiny models are latency-bound
        device = torch.device("cpu")
        profile = profile.scaled(gg.TINY_SIZES, gg.TINY_FRAMES, 32, {"stg_blocks": (1,)})
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        sys.exit("no CUDA GPU here: run with --cpu-smoke to check the script")
    if args.compile_backend:
        if args.compile_backend == FAILING_BACKEND:
            _register_failing_backend()
        speedups = dataclasses.replace(profile.speedups, compile_backend=args.compile_backend)
        profile = dataclasses.replace(profile, speedups=speedups)
    if args.attention_backend:
        speedups = dataclasses.replace(profile.speedups, attention_backend=args.attention_backend)
        profile = dataclasses.replace(profile, speedups=speedups)
    session.device, session.profile = device, profile
    session.proof.document["environment"] = environment(device)
    session.proof.step("environment", **session.proof.document["environment"])


def build(session: Session) -> None:
    import torch

    from takeone.models.ltx2.tiny import build_tiny_ltx2_components

    device, before = session.device, free_gib(session.device)
    started = time.perf_counter()
    if session.args.cpu_smoke:
        components, built = build_tiny_ltx2_components(), {"models": "tiny"}
    else:
        # Neither case runs the full DiT: one random DiT serves both roles (no 35 GiB to build and quantize).
        share, text = gg.plan_memory(argparse.Namespace(share_transformer=True, text_encoder="auto"), before or 0.0)
        components = gg.build_full(device, share, text)
        built = {"models": "full-size, random bf16 weights", "shared_transformer": share, "text_encoder": text}
        torch.cuda.synchronize(device)
    seconds = round(time.perf_counter() - started, 2)
    built.update(seconds=seconds, free_gib_before=before, free_gib_after=free_gib(device))
    session.components = components
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    session.timer = gg.StageTimer(sync)
    gg.instrument(components, session.timer)
    session.proof.step("build", **built)


def plan(session: Session) -> None:
    from takeone.models.ltx2.model import write_warmup_image

    image = write_warmup_image(session.folder)
    for key, label, fields, floor in CASES:
        if key in session.args.cases.split(","):
            task = gg.request_for(gg.Case(key, label, fields, floor), image)
            session.plans.append((key, task, session.profile.recipe_for(task)))


def plain(session: Session) -> None:
    """The plain bf16 pipeline calls of the first case: the baseline every speed-up is read against."""
    from takeone.models.ltx2.model import vae_ratios
    from takeone.models.ltx2.warmup import shrunk

    components, timer = session.components, session.timer
    pipes = gg.plain_pipelines(components)
    rate = int(components["vocoder"].config.output_sampling_rate)
    key, task, recipe = session.plans[0]
    # One untimed tiny run first: lazy CUDA set-up is start-up cost, not the case's.
    spatial, temporal = vae_ratios(components["vae"])
    gg.run_plain(pipes, components, task, shrunk(recipe, 4 * spatial, 4 * spatial, temporal + 1), timer)
    timer.take()

    def work() -> None:
        output = gg.run_plain(pipes, components, task, recipe, timer)
        deliver(session, key, "plain", gg.plain_video(output, recipe, rate), recipe)

    session.proof.case(key, "plain", dataclasses.asdict(gg.measure(session.device, timer, work)))


def speedups(session: Session) -> None:
    """fp8 and the attention backend, no compile: the model as a worker without inductor has it."""
    from takeone.models.ltx2.model import Ltx2Model

    chosen = dataclasses.replace(session.profile.speedups, compile="off")
    session.model = Ltx2Model(session.components, session.device, speedups=chosen, warmup_recipes=paths(session))
    # A tiny run of each path first: an fp8 or attention kernel that fails here is taken out
    # (with the reason in the report) instead of failing the cases.
    started = time.perf_counter()
    runs = session.model.warmup()
    report = session.model.speedup_report
    session.proof.document["speedups"] = {"applied": report.applied, "skipped": report.skipped}
    session.proof.step("speed-ups", warmup_s=round(time.perf_counter() - started, 2), runs=runs,
                       applied=report.applied, skipped=report.skipped,
                       summary="; ".join(report.applied + report.skipped) or "none")  # fmt: skip
    session.timer.take()
    gg.label_stages(session.model, session.timer)
    for key, task, recipe in session.plans:
        run_case(session, key, "speed-ups", task, recipe)


def compiled(session: Session) -> None:
    """The profile's regional compile on top (fp8 is already in the weights), warmed up path by path."""
    from takeone.models.ltx2.model import Ltx2Model

    # fp8 is in the weights already (or fell back); an attention backend that failed stays out.
    dropped = session.model is not None and any(
        "attention backend" in line for line in session.model.speedup_report.skipped)  # fmt: skip
    attention = None if dropped else session.profile.speedups.attention_backend
    chosen = dataclasses.replace(session.profile.speedups, fp8=False, attention_backend=attention)
    model = Ltx2Model(session.components, session.device, speedups=chosen, warmup_recipes=paths(session))
    proof = session.proof

    def graph(recipe: Any, size: tuple[int, int, int], seconds: float) -> None:
        proof.step("compile graph", path=f"{recipe.pipeline}/{'x'.join(map(str, size))}",
                   steps=recipe.steps, seconds=round(seconds, 2))  # fmt: skip

    started = time.perf_counter()
    session.timer.take()
    runs = model.warmup(graph)
    report = model.speedup_report
    state = "compiled" if report.compiled else _compile_state(report.skipped)
    proof.document["compile"] = state
    proof.step("compile", seconds=round(time.perf_counter() - started, 2), runs=runs, compile=state,
               applied=report.applied, skipped=report.skipped)  # fmt: skip
    session.timer.take()
    gg.label_stages(model, session.timer)
    session.model = model
    for key, task, recipe in session.plans:
        run_case(session, key, "compiled (first)", task, recipe, record=False)
        run_case(session, key, "compiled", task, recipe)


def paths(session: Session) -> list[Any]:
    """One warm-up recipe per code path the cases use (the model compiles and warms these only)."""
    from takeone.models.ltx2.warmup import _code_path, warmup_recipes

    wanted = {_code_path(recipe) for *_, recipe in session.plans}
    return [recipe for recipe in warmup_recipes(session.profile) if _code_path(recipe) in wanted]


def run_case(session: Session, key: str, path: str, task: Any, recipe: Any, record: bool = True) -> None:
    def work() -> None:
        video = session.model.generate(task, recipe, lambda _d, _t: None, lambda: False)
        deliver(session, key, path, video, recipe)

    run = dataclasses.asdict(gg.measure(session.device, session.timer, work))
    if record:
        session.proof.case(key, path, run)
    else:
        session.proof.step(f"{key} {path}", end_to_end_s=run["end_to_end_s"])


def deliver(session: Session, key: str, path: str, video: Any, recipe: Any) -> None:
    from takeone.engine.render import deliver as write_mp4

    target = session.args.out / f"{key}.mp4"
    with session.timer("encode"):
        write_mp4(video, recipe, target)
    session.delivered[key] = (target, recipe, path, video.sample_rate)


def check_mp4s(session: Session) -> None:
    """Open each case's last MP4 as a player would and compare it with what the recipe promises."""
    import av

    for key, (path, recipe, made_by, rate) in session.delivered.items():
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            frames = sum(1 for _ in container.decode(video=0))
            fps = video.average_rate or Fraction(0)
            size = (video.codec_context.width, video.codec_context.height)
        with av.open(str(path)) as container:  # again: the video pass read every packet
            audio = container.streams.audio[0] if container.streams.audio else None
            sample_rate = audio.codec_context.sample_rate if audio else None
            samples = sum(frame.samples for frame in container.decode(audio=0)) if audio else 0
        expected_samples = round(recipe.output_frames / recipe.output_fps * rate)
        seconds = round(samples / sample_rate, 4) if sample_rate else None
        found = {"path": made_by, "frames": frames, "fps": float(fps), "size": list(size),
                 "audio_rate": sample_rate, "audio_s": seconds}  # fmt: skip
        wanted = {"frames": recipe.output_frames, "fps": recipe.output_fps,
                  "size": [recipe.output_width, recipe.output_height],
                  "audio_rate": rate if recipe.audio else None,
                  "audio_s": round(expected_samples / rate, 4) if recipe.audio else None}  # fmt: skip
        problems = [name for name in ("frames", "fps", "size", "audio_rate") if found[name] != wanted[name]]
        if recipe.audio and not (expected_samples <= samples <= expected_samples + AUDIO_SLACK_SAMPLES):
            problems.append("audio_s")
        session.proof.document.setdefault("mp4", {})[key] = {"found": found, "wanted": wanted, "problems": problems}
        session.proof.step(f"mp4 {key}", ok=not problems, problems=",".join(problems) or "none",
                           **{name: value for name, value in found.items() if name != "path"})  # fmt: skip
        if problems:
            raise AssertionError(f"{key}: {problems}: found {found}, wanted {wanted}")


def batched(session: Session) -> None:
    """One fast-tier job alone, then ``--batch`` of them in one run: the batching figure."""
    from takeone.models.ltx2.batch import BatchItem, generate_batch
    from takeone.models.ltx2.model import Ltx2Model, write_warmup_image

    # fp8 is in the weights already (or fell back); an attention backend that failed stays out.
    skipped = session.proof.document.get("speedups", {}).get("skipped", [])
    dropped = "speedups" not in session.proof.document or any("attention backend" in line for line in skipped)
    attention = None if dropped else session.profile.speedups.attention_backend
    chosen = dataclasses.replace(session.profile.speedups, fp8=False, compile="off", attention_backend=attention)
    model = Ltx2Model(session.components, session.device, speedups=chosen)
    base = gg.request_for(gg.Case("fast-t2v-5s", "fast t2v 5 s 720p", {"tier": "fast"}, 3.1),
                          write_warmup_image(session.folder))
    tasks = [dataclasses.replace(base, prompt=f"{base.prompt}, take {n}", seed=base.seed + n)
             for n in range(session.args.batch)]
    recipe = session.profile.recipe_for(base)

    def alone() -> None:
        video = model.generate(tasks[0], recipe, lambda _d, _t: None, lambda: False)
        deliver(session, "batch-alone", "alone", video, recipe)

    def together() -> None:
        items = [BatchItem(task, recipe, lambda _d, _t: None, lambda: False) for task in tasks]
        for n, video in enumerate(generate_batch(model, items)):
            assert video is not None  # None only for a job cancelled meanwhile
            deliver(session, f"batch-{n}", "batched", video, recipe)

    session.timer.take()
    single = gg.measure(session.device, session.timer, alone)
    group = gg.measure(session.device, session.timer, together)
    ratio = round(len(tasks) * single.end_to_end_s / group.end_to_end_s, 2)
    session.proof.document["batch"] = {"jobs": len(tasks), "alone": dataclasses.asdict(single),
                                       "batched": dataclasses.asdict(group), "jobs_per_s_ratio": ratio}
    session.proof.step("batch", jobs=len(tasks), alone_s=single.end_to_end_s, batched_s=group.end_to_end_s,
                       jobs_per_s_ratio=ratio, peak_gib=group.peak_gib)


def loras(session: Session) -> None:
    """Resident LoRAs on the worker's switcher: warm switch times, then one LoRA job."""
    import statistics

    from takeone.backends.local_blobs import LocalBlobStore
    from takeone.core.loras import LoraUse
    from takeone.engine.loras import LoraSwitcher
    from takeone.models.ltx2.model import Ltx2Model

    # As in the batch step: fp8 is in the weights already (or fell back), no failed attention backend.
    skipped = session.proof.document.get("speedups", {}).get("skipped", [])
    dropped = "speedups" not in session.proof.document or any("attention backend" in line for line in skipped)
    attention = None if dropped else session.profile.speedups.attention_backend
    chosen = dataclasses.replace(session.profile.speedups, fp8=False, compile="off", attention_backend=attention)
    model = Ltx2Model(session.components, session.device, speedups=chosen)
    blobs = LocalBlobStore(session.folder / "lora-library", b"")
    names = _random_loras(blobs, session.components["transformer"], session.args.loras, rank=16)
    switcher = LoraSwitcher(model, blobs, session.folder / "lora-scratch", device_slots=len(names))
    warm: list[float] = []
    for round_ in range(2):
        for name in names:
            seconds = switcher.activate((LoraUse(name, 0.8),))
            session.timer.sync()
            if round_:
                warm.append(seconds)
    key, task, recipe = session.plans[0]
    try:
        run = gg.measure(session.device, session.timer,
                         lambda: deliver(session, "lora", key, model.generate(task, recipe, lambda _d, _t: None,
                                                                              lambda: False), recipe))
    finally:
        for name in names:
            switcher.forget(name)  # the components go on without adapters
    figures = {"resident": len(names), "rank": 16, "switch_p50_ms": round(statistics.median(warm) * 1000, 1),
               "switch_max_ms": round(max(warm) * 1000, 1), "job": dataclasses.asdict(run), "case": key}
    session.proof.document["loras"] = figures
    session.proof.step("loras", resident=len(names), switch_p50_ms=figures["switch_p50_ms"],
                       switch_max_ms=figures["switch_max_ms"], job_s=run.end_to_end_s)


def _random_loras(blobs: Any, transformer: Any, count: int, rank: int) -> list[str]:
    """``count`` LoRAs of random low-rank weights over the DiT's video self-attention."""
    import hashlib

    import torch
    from safetensors.torch import save

    from takeone.core.loras import LoraCatalog, LoraManifest

    targets = {name: module for name, module in transformer.named_modules()
               if ".attn1.to_" in name and isinstance(module, torch.nn.Linear)}
    generator = torch.Generator().manual_seed(0)
    names = []
    for n in range(count):
        state = {}
        for name, module in targets.items():
            down = torch.randn(rank, module.in_features, generator=generator)
            up = torch.randn(module.out_features, rank, generator=generator)
            state[f"transformer.{name}.lora_A.weight"] = down * 0.01
            state[f"transformer.{name}.lora_B.weight"] = up * 0.01
        data = save(state, metadata={"format": "pt"})
        manifest = LoraManifest(name=f"style{n}", profile="ltx-2", size=len(data),
                                sha256=hashlib.sha256(data).hexdigest(), rank=rank, targets=tuple(sorted(targets)),
                                layout="diffusers")
        LoraCatalog(blobs).add(manifest, data)
        names.append(manifest.name)
    return names


def _register_failing_backend() -> None:
    from torch._dynamo import register_backend

    def fail(graph: Any, inputs: Any) -> Any:
        raise RuntimeError("compile refused on purpose (--compile-backend proof_fail)")

    register_backend(compiler_fn=fail, name=FAILING_BACKEND)


def _compile_state(skipped: list[str]) -> str:
    fallback = next((line for line in skipped if "running uncompiled" in line), None)
    if fallback is not None:
        return f"fell back to uncompiled: {fallback}"
    reason = next((line for line in skipped if "compil" in line), "off")
    return f"not compiled: {reason}"


def run(session: Session) -> None:
    """The steps in order; a step whose inputs failed is not tried (each speed-up step builds its
    own model over the components, so compile is tried even when the step before it failed)."""
    step(session, "environment", lambda: setup(session))
    if session.profile is None or not step(session, "build", lambda: build(session)):
        return
    if not step(session, "plan", lambda: plan(session)) or not session.plans:
        return
    step(session, "plain", lambda: plain(session))
    step(session, "speed-ups", lambda: speedups(session))
    step(session, "compile", lambda: compiled(session))
    step(session, "mp4", lambda: check_mp4s(session))
    if session.args.batch > 1:
        step(session, "batch", lambda: batched(session))
    if session.args.loras > 0:
        step(session, "loras", lambda: loras(session))
    step(session, "gpus", lambda: gpus(session))


def gpus(session: Session) -> None:
    """1 GPU against all of them on one job, or "one GPU here"."""
    import torch

    count = torch.cuda.device_count() if session.device.type == "cuda" else 0
    if count <= 1:
        session.proof.step("gpus", gpus=count, note="one GPU here")
        return
    from takeone.core.task import VideoTask
    from takeone.engine.group import run_one_job
    from takeone.engine.worker import WorkerConfig

    task = VideoTask(kind="t2v", prompt="a red fox in snow", seed=1, tier="standard")
    seconds = {}
    for n in (1, count):
        config = WorkerConfig(profile="tiny", gpus_per_job=n,
                              visible_gpu=",".join(str(i) for i in range(n)))
        started = time.perf_counter()
        run_one_job(config, task, session.folder / f"gpus-{n}.mp4", lambda done, total: None)
        seconds[n] = round(time.perf_counter() - started, 2)
    session.proof.step("gpus", gpus=count, profile="tiny", seconds_by_gpus=seconds)


def headline(document: dict[str, Any]) -> str | None:
    for key in reversed(list(document["cases"])):
        paths = document["cases"][key]
        for path in ("compiled", "speed-ups", "plain"):
            if path in paths:
                return f"ltx-2 {key} {path} end to end: {paths[path]['end_to_end_s']:.2f} s"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    proof = Proof(args.out, "cpu-smoke" if args.cpu_smoke else "gpu")
    start_watchdog(proof, args.deadline)
    run(Session(args, proof))
    status = "errors" if proof.document["errors"] else "complete"
    proof.finish(status)
    print(f"wrote {args.out / 'proof.json'} ({status})")
    line = headline(proof.document)
    if line is not None:
        print(line + (" (cpu smoke, tiny models)" if args.cpu_smoke else ""))
    return ERRORS_EXIT if proof.document["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
