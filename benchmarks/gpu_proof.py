"""The first GPU run in one short command: does ltx-2 work at full size, and how fast?

    python benchmarks/gpu_proof.py --out proof            # one H100/H200, under 9 minutes
    python benchmarks/gpu_proof.py --cpu-smoke --out p    # anywhere: tiny models, seconds (CI)

On one GPU with full-size random weights (the weights cannot be downloaded where this runs;
timing does not depend on their values), it:

1. prints and records the machine: Python, torch, CUDA, diffusers, transformers, torchao and
   Triton versions, the GPU and its free memory, whether a C compiler exists (Triton and
   inductor need one) and the attention backend takeone would choose;
2. builds the components (gpu_generate.py's full-size builders; one DiT serves as distilled
   and full, since neither case runs the full one, and Gemma is stubbed only if the card is
   short of memory, as that script explains);
3. runs ltx-2 ``fast`` image to video 5 s 720p and ``standard`` text to video 5 s 1080p with
   audio, first as plain diffusers pipeline calls, then through takeone's model with the
   profile's speed-ups (fp8 where it runs, the attention backend, regional compile of the
   paths these two cases use only, warmed up first). A compile failure falls back to the
   plain path, and the JSON says so.

After every step it prints one line and rewrites ``DIR/proof.json``; at ``--deadline``
seconds (default 540) a watchdog writes what it has, marked ``"status": "deadline"``, and
exits with status 3, so a lease that ends mid-run still leaves figures. The last printed
line is one figure: the optimized 1080p case, end to end.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gpu_generate as gg  # the script's folder is on sys.path when it is run

# (key, label, task fields, transformer-only floor in s from models.md)
CASES: tuple[tuple[str, str, dict[str, Any], float], ...] = (
    ("fast-i2v-5s", "fast i2v 5 s 720p", {"tier": "fast", "image": True}, 3.1),
    ("standard-t2v-audio-5s", "standard t2v 5 s 1080p audio", {"tier": "standard", "audio": True}, 9.2),
)
DEADLINE_EXIT = 3
FAILING_BACKEND = "proof_fail"


class Proof:
    """The JSON document, rewritten whole (atomically) after every step."""

    def __init__(self, out: Path, mode: str) -> None:
        self.out = out
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.document: dict[str, Any] = {
            "benchmark": "gpu_proof", "mode": mode, "status": "running",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "steps": [], "cases": {},
        }  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 2)

    def step(self, name: str, **fields: Any) -> None:
        """Record one finished step, print its line, rewrite the JSON."""
        with self.lock:
            self.document["steps"].append({"step": name, "at_s": self.elapsed(), **fields})
            self._write()
        detail = ", ".join(f"{key}={value}" for key, value in fields.items() if not isinstance(value, dict | list))
        print(f"[{self.elapsed():7.1f} s] {name}: {detail}", flush=True)

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
        temporary.write_text(json.dumps(self.document, indent=2) + "\n")
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

    from takeone.models.ltx2.speedups import SpeedupReport, resolve_attention_backend

    versions = {name: _version(name) for name in ("torch", "diffusers", "transformers", "torchao", "triton", "av")}
    info: dict[str, Any] = {"python": platform.python_version(), **versions}
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        info.update(gpu=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                    cuda=torch.version.cuda, free_gib=round(free / gg.GIB, 1),
                    total_gib=round(total / gg.GIB, 1))  # fmt: skip
    else:
        info.update(gpu=None, cpu=platform.processor() or platform.machine())
    info["c_compiler"] = c_compiler()
    info["attention_backend"] = resolve_attention_backend("auto", device, SpeedupReport()) or "native SDPA"
    return info


def c_compiler() -> str | None:
    """The C compiler Triton and inductor would call, or None (they then fail to compile)."""
    configured = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "").split(" ")[0]
    for candidate in (configured, "cc", "gcc", "clang"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def _version(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # noqa: BLE001 - absent or broken: either way it is not usable
        return None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for proof.json")
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds after which it stops itself")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny models on CPU: checks the script works")
    parser.add_argument("--cases", default=",".join(key for key, *_ in CASES), help="comma-separated case keys")
    parser.add_argument("--compile-backend", default=None,
                        help=f"torch.compile backend instead of the profile's ({FAILING_BACKEND!r}: one that "
                             "raises, to check the fallback)")  # fmt: skip
    return parser.parse_args(argv)


def setup(args: argparse.Namespace, proof: Proof) -> tuple[Any, Any, dict[str, Any]]:
    """Device, profile (with the compile backend asked for) and built components."""
    import torch

    from takeone.models.ltx2.tiny import build_tiny_ltx2_components
    from takeone.models.registry import get_profile

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
    proof.document["environment"] = environment(device)
    proof.step("environment", **proof.document["environment"])
    if args.cpu_smoke:
        components, built = build_tiny_ltx2_components(), {"models": "tiny"}
    else:
        free, _total = torch.cuda.mem_get_info(device)
        # Neither case runs the full DiT: one random DiT serves both roles (no 35 GiB to build and quantize).
        share, text = gg.plan_memory(argparse.Namespace(share_transformer=True, text_encoder="auto"), free / gg.GIB)
        components = gg.build_full(device, share, text)
        built = {"models": "full-size, random bf16 weights", "shared_transformer": share, "text_encoder": text}
    proof.step("build", **built)
    return device, profile, components


def _register_failing_backend() -> None:
    from torch._dynamo import register_backend

    def fail(graph: Any, inputs: Any) -> Any:
        raise RuntimeError("compile refused on purpose (--compile-backend proof_fail)")

    register_backend(compiler_fn=fail, name=FAILING_BACKEND)


def run(args: argparse.Namespace, proof: Proof) -> dict[str, Any]:
    import torch

    from takeone.models.ltx2.model import Ltx2Model, vae_ratios, write_warmup_image
    from takeone.models.ltx2.warmup import shrunk, warmup_recipes

    device, profile, components = setup(args, proof)
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    timer = gg.StageTimer(sync)
    gg.instrument(components, timer)
    folder = Path(tempfile.mkdtemp(prefix="takeone-gpu-proof-"))
    image = write_warmup_image(folder)
    plans = []
    for key, label, fields, floor in CASES:
        if key in args.cases.split(","):
            task = gg.request_for(gg.Case(key, label, fields, floor), image)
            plans.append((key, label, task, profile.recipe_for(task)))
    pipes = gg.plain_pipelines(components)
    rate = int(components["vocoder"].config.output_sampling_rate)
    # One untimed tiny plain run: lazy CUDA set-up is start-up cost, not the first case's.
    _key, _label, first_task, first_recipe = plans[0]
    spatial, temporal = vae_ratios(components["vae"])
    gg.run_plain(pipes, components, first_task, shrunk(first_recipe, 4 * spatial, 4 * spatial, temporal + 1), timer)
    timer.take()
    deliver = gg.deliver
    for key, _label, task, recipe in plans:

        def plain(task: Any = task, recipe: Any = recipe) -> None:
            output = gg.run_plain(pipes, components, task, recipe, timer)
            deliver(gg.plain_video(output, recipe, rate), recipe, folder, timer)

        proof.case(key, "plain", dataclasses.asdict(gg.measure(device, timer, plain)))
    # Compile only the code paths these cases use.
    paths = [recipe for recipe in warmup_recipes(profile) if any(_same_path(recipe, r) for *_, r in plans)]
    started = time.perf_counter()
    model = Ltx2Model(components, device, speedups=profile.speedups, warmup_recipes=paths)
    runs = model.warmup()
    report = model.speedup_report
    compile_state = "compiled" if report.compiled else _compile_state(report.skipped)
    proof.step("warm-up", seconds=round(time.perf_counter() - started, 2), runs=runs, compile=compile_state,
               applied=report.applied, skipped=report.skipped)  # fmt: skip
    proof.document["compile"] = compile_state
    timer.take()
    gg.label_stages(model, timer)
    for key, _label, task, recipe in plans:

        def optimized(task: Any = task, recipe: Any = recipe) -> None:
            deliver(model.generate(task, recipe, lambda _d, _t: None, lambda: False), recipe, folder, timer)

        proof.case(key, "optimized", dataclasses.asdict(gg.measure(device, timer, optimized)))
    return proof.document


def _same_path(a: Any, b: Any) -> bool:
    from takeone.models.ltx2.warmup import _code_path

    return bool(_code_path(a) == _code_path(b))


def _compile_state(skipped: list[str]) -> str:
    fallback = next((line for line in skipped if "running uncompiled" in line), None)
    if fallback is not None:
        return f"fell back to uncompiled: {fallback}"
    reason = next((line for line in skipped if "compil" in line), "off")
    return f"not compiled: {reason}"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    proof = Proof(args.out, "cpu-smoke" if args.cpu_smoke else "gpu")
    start_watchdog(proof, args.deadline)
    document = run(args, proof)
    proof.finish("complete")
    print(f"wrote {args.out / 'proof.json'}")
    last_key = [key for key, *_ in CASES if key in document["cases"]][-1]
    figure = document["cases"][last_key]["optimized"]["end_to_end_s"]
    suffix = " (cpu smoke, tiny models)" if args.cpu_smoke else ""
    print(f"ltx-2 {last_key} end to end: {figure:.2f} s{suffix}")


if __name__ == "__main__":
    main()
