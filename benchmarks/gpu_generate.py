"""Generation speed of the ltx-2 recipes at their real size on one GPU: plain diffusers vs takeone.

    python benchmarks/gpu_generate.py                          # a CUDA GPU: full-size LTX-2
    python benchmarks/gpu_generate.py --cases std,master       # a subset (each run < 10 min)
    python benchmarks/gpu_generate.py --cpu-smoke --out r.json # anywhere: tiny models, seconds

Weights cannot be downloaded where this runs, so the full-size LTX-2 architectures (the
19B transformer's config from the project's model notes; the other components use diffusers'
class defaults, which follow LTX-2.0) are built with random bf16 weights on the GPU. Timing
does not depend on the weights' values.

Each recipe (2.1 std / pro / master 5 s, 2.6 pro 5 s and 10 s with audio) runs twice in one
process: first as plain diffusers pipeline calls with the recipe's arguments and no speed-up
(bf16, PyTorch SDPA, no compile, diffusers' default scheduler), then through takeone's
:class:`~takeone.models.ltx2.model.Ltx2Model` with the profile's speed-ups (compiled by ``warmup()``
first, whose cost is reported apart as start-up). Both encode the MP4 with takeone's delivery
code. Per stage, seconds are exclusive (text encoding inside a stage counts as text). The
plain path decodes the whole clip inside the pipeline, then encodes; takeone decodes tile by
tile while a second thread encodes, so its "encode" column is only the encoding that the
decode did not hide.

What is approximated, and why:

- Memory: two 19B DiTs (full + distilled, 2 x 35 GiB) and Gemma 3 12B (23 GiB) do not fit
  an 80 GB card together. Where they do not, one random DiT serves both roles
  (``--share-transformer``: the same compute, but a master cache hook would then also hit
  stage 2, so caches are refused) and, if still short, Gemma is replaced by a stub returning
  random hidden states of the real shape (``--text-encoder stub``: the "text" column is then
  not Gemma's cost). A real 80 GB server streams the full DiT from host RAM for master
  (``offload=auto``); that transfer is not measured here.
- Tokenizer: a character tokenizer; prompts are padded to 1024 tokens either way, so the
  text encoder sees the real shape.
- The FLOP floor is models.md's transformer-only figure at 800 TFLOP/s of dense bf16.

GPU figures are owed: this script has only run in ``--cpu-smoke`` mode so far (no GPU was
available where it was written). Nothing in the repository states a GPU time for it yet.
The last printed line is one figure: ``ltx-2 2.1 std 5 s end to end: 7.4 s``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TINY_SIZES = {"16:9": (128, 64, 128, 72), "9:16": (64, 128, 72, 128), "1:1": (64, 64, 72, 72)}
TINY_FRAMES = {5: 9, 10: 17}
STAGES = ("text", "stage 1", "upsample", "stage 2", "vae decode", "audio decode", "encode")
GIB = 2**30
# Transformer size (models.md): LTX-2.0, 18.9B parameters.
LTX2_TRANSFORMER = {
    "in_channels": 128, "out_channels": 128, "patch_size": 1, "patch_size_t": 1,
    "num_attention_heads": 32, "attention_head_dim": 128, "cross_attention_dim": 4096,
    "audio_in_channels": 128, "audio_out_channels": 128, "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64, "audio_cross_attention_dim": 2048, "num_layers": 48,
    "caption_channels": 3840, "rope_type": "split",
}  # fmt: skip
# Gemma 3 12B's text tower (hidden 3840 and 48 + 1 hidden states are what LTX-2's connectors
# take); the vision tower is minimal since prompts are text only.
GEMMA3_12B_TEXT: dict[str, Any] = {
    "vocab_size": 262_208, "hidden_size": 3840, "intermediate_size": 15_360, "num_hidden_layers": 48,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
    "query_pre_attn_scalar": 256, "sliding_window": 1024, "max_position_embeddings": 131_072,
}  # fmt: skip
# The VAE's class defaults are LTX-2's blocks, but its derived compression would read 64x/16x:
# LTX-2 compresses 32x in space and 8x in time (the pipelines size latents from these).
LTX2_VAE = {"spatial_compression_ratio": 32, "temporal_compression_ratio": 8, "decoder_causal": False}
GEMMA3_12B_GIB = 22.7
TRANSFORMER_GIB = 35.4
OTHER_GIB = 6.0  # VAE, audio VAE, vocoder, connectors, upsampler
ACTIVATION_GIB = 12.0


@dataclass(frozen=True)
class Case:
    """One benchmarked recipe: its task and models.md's transformer-only floor."""

    key: str
    label: str
    request: Mapping[str, Any]
    floor_s: float


CASES = (
    Case("std", "2.1 std 5 s", {"tier": "fast", "image": True}, 3.1),
    Case("pro", "2.1 pro 5 s", {"tier": "standard", "image": True}, 9.2),
    Case("master", "2.1 master 5 s", {"tier": "quality", "image": True}, 48.0),
    Case("2.6-5s", "2.6 pro 5 s audio", {"tier": "standard", "audio": True}, 9.2),
    Case("2.6-10s", "2.6 pro 10 s audio", {"tier": "standard", "audio": True, "seconds": 10}, 24.0),
)


@dataclass
class Run:
    """One path's timings for one case."""

    stages: dict[str, float] = field(default_factory=dict)
    end_to_end_s: float = 0.0
    peak_gib: float | None = None


# --- timing ----------------------------------------------------------------------------


class StageTimer:
    """Exclusive wall time per label: a section nested in another is charged to its own label
    only. Synchronises the GPU at each edge so that asynchronous kernels land where they ran."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.totals: dict[str, float] = defaultdict(float)
        self._children: list[float] = []

    @contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        self._children.append(0.0)
        try:
            yield
        finally:
            self.sync()
            elapsed = time.perf_counter() - start
            self.totals[label] += elapsed - self._children.pop()
            if self._children:
                self._children[-1] += elapsed

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        """Time every call of ``owner.attribute`` (an instance attribute shadows the method)."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)

    def take(self) -> dict[str, float]:
        """The totals so far, in :data:`STAGES` order, and a fresh start."""
        totals = {stage: round(self.totals.get(stage, 0.0), 4) for stage in STAGES}
        self.totals.clear()
        return totals


def instrument(components: Mapping[str, Any], timer: StageTimer) -> None:
    """Time the components whose work is not a denoising stage of its own."""
    timer.wrap(components["text_encoder"], "forward", "text")
    timer.wrap(components["connectors"], "forward", "text")
    timer.wrap(components["latent_upsampler"], "forward", "upsample")
    timer.wrap(components["vae"], "decode", "vae decode")
    timer.wrap(components["vae"].decoder, "forward", "vae decode")  # takeone's streamed tiles
    timer.wrap(components["audio_vae"], "decode", "audio decode")
    timer.wrap(components["vocoder"], "forward", "audio decode")


# --- components ------------------------------------------------------------------------


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Build modules straight in ``dtype``: a 19B model never exists in float32 (76 GB)."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def build_full(device: Any, share_transformer: bool, text_encoder: str) -> dict[str, Any]:
    """Full-size LTX-2 with random bf16 weights, built on ``device``."""
    import diffusers
    import torch
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    from takeone.models.ltx2.tiny import build_tokenizer

    video_vae: Any = diffusers.AutoencoderKLLTX2Video  # diffusers' classes are untyped
    transformer: Any = diffusers.LTX2VideoTransformer3DModel
    classes: dict[str, Any] = {
        "audio_vae": diffusers.AutoencoderKLLTX2Audio, "vocoder": LTX2Vocoder,
        "connectors": LTX2TextConnectors, "latent_upsampler": LTX2LatentUpsamplerModel,
    }  # fmt: skip
    with torch.device(device), default_dtype(torch.bfloat16):
        built = {name: cls().eval() for name, cls in classes.items()}
        built["vae"] = video_vae(**LTX2_VAE).eval()
        built["transformer"] = transformer(**LTX2_TRANSFORMER).eval()
        built["transformer_full"] = (built["transformer"] if share_transformer
                                     else transformer(**LTX2_TRANSFORMER).eval())
        built["text_encoder"] = gemma3_12b() if text_encoder == "gemma" else stub_text_encoder(device)
    return {**built, "tokenizer": build_tokenizer(), "scheduler": ltx2_scheduler()}


def ltx2_scheduler() -> Any:
    """LTX-2's resolution-shifted flow-matching schedule (as in takeone.models.ltx2.tiny)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler: Any = FlowMatchEulerDiscreteScheduler
    return scheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, shift_terminal=0.1)


def gemma3_12b() -> Any:
    """Gemma 3 12B's text tower at full size with random weights (vision tower minimal)."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=28, patch_size=14)  # fmt: skip
    config = Gemma3Config(text_config=Gemma3TextConfig(**GEMMA3_12B_TEXT).to_dict(), vision_config=vision.to_dict(),
                          mm_tokens_per_image=4)  # fmt: skip
    model: Any = Gemma3ForConditionalGeneration(config)
    return model.eval()


def stub_text_encoder(device: Any) -> Any:
    """Stands in for Gemma 3 12B where memory is short (see the module docstring)."""
    import torch

    class Stub(torch.nn.Module):
        """Stands in for Gemma 3 12B where memory is short: 49 random hidden states of width
        3840 per token, what the LTX-2 connectors read. Its time is not Gemma's."""

        def __init__(self, device: Any) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1, device=device))

        @property
        def dtype(self) -> Any:
            return self.anchor.dtype

        def forward(self, input_ids: Any, attention_mask: Any = None, output_hidden_states: bool = True) -> Any:
            shape = (*input_ids.shape, GEMMA3_12B_TEXT["hidden_size"])
            states = tuple(torch.randn(shape, device=input_ids.device, dtype=self.dtype) for _ in range(49))
            return argparse.Namespace(hidden_states=states)

    return Stub(device)


def plan_memory(args: argparse.Namespace, free_gib: float) -> tuple[bool, str]:
    """Share one DiT and/or stub the text encoder when the card is too small for everything."""
    need = 2 * TRANSFORMER_GIB + GEMMA3_12B_GIB + OTHER_GIB + ACTIVATION_GIB
    share = args.share_transformer if args.share_transformer is not None else free_gib < need
    if share:
        need -= TRANSFORMER_GIB
    text = args.text_encoder if args.text_encoder != "auto" else ("gemma" if free_gib >= need else "stub")
    return share, text


# --- the two paths ---------------------------------------------------------------------


def request_for(case: Case, image: str) -> Any:
    from takeone.core.task import VideoTask

    fields = {k: v for k, v in case.request.items() if k != "image"}
    if case.request.get("image"):
        fields.update(kind="i2v", first_frame=image)
    else:
        fields["kind"] = "t2v"
    return VideoTask(prompt="a red fox runs through snow at dawn", seed=7, **fields)


def plain_pipelines(components: Mapping[str, Any]) -> dict[Any, Any]:
    """Plain diffusers pipelines over the components, built once (not timed): every
    (kind, transformer) variant and the latent upsampler under the key ``"upsampler"``."""
    from takeone.models.ltx2 import model as ltx2

    return {**ltx2.build_variants(components), "upsampler": ltx2.build_upsampler(components)}


def run_plain(
    pipes: Mapping[Any, Any], components: Mapping[str, Any], request: Any, recipe: Any, timer: StageTimer
) -> Any:
    """The recipe as diffusers pipeline calls, no speed-up: stage 1, 2x upsample, stage 2."""
    from takeone.models.family_helpers import seeded_generator
    from takeone.models.ltx2 import model as ltx2
    from takeone.models.ltx2.recipe import ltx2_sampling

    first_pipe = pipes[(recipe.pipeline, ltx2_sampling(recipe).stage1_transformer)]
    second_pipe = pipes[(recipe.pipeline, "transformer")]
    upsampler = pipes["upsampler"]
    ltx2.set_vae_tiling(components["vae"], recipe.vae_tiling)  # memory, not speed
    generator = seeded_generator(request.seed)
    width, height = recipe.stage1_size
    # Arguments (conditioning images read and scaled) are made outside the stage timers, as
    # the optimized model does.
    # Plain diffusers: each stage is given the prompt text and encodes it itself.
    text = {"prompt": request.prompt, "negative_prompt": request.negative_prompt}
    arguments = {**text, **ltx2.prompt_arguments(recipe, generator), **ltx2.stage1_arguments(recipe),
                 **ltx2.conditioning_arguments(request, recipe, width, height)}  # fmt: skip
    with timer("stage 1"):
        first = first_pipe(**arguments, output_type="latent")
    latents = upsampler(latents=first.frames, output_type="latent", return_dict=False)[0]
    arguments = {**text, **ltx2.prompt_arguments(recipe, generator), **ltx2.stage2_arguments(recipe),
                 **ltx2.conditioning_arguments(request, recipe, recipe.gen_width, recipe.gen_height)}  # fmt: skip
    with timer("stage 2"):
        return second_pipe(**arguments, latents=latents, audio_latents=first.audio, output_type="pt")


def label_stages(model: Any, timer: StageTimer) -> None:
    """Charge the optimized model's first denoising call of a job to stage 1, the next to stage 2."""
    original = model._stage
    calls = [0]

    def timed(pipe: Any, arguments: dict[str, Any]) -> Any:
        calls[0] += 1
        with timer("stage 1" if calls[0] % 2 else "stage 2"):
            return original(pipe, arguments)

    model._stage = timed


def deliver(video: Any, recipe: Any, folder: Path, timer: StageTimer) -> None:
    from takeone.engine.render import deliver as write_mp4

    with timer("encode"):
        write_mp4(video, recipe, folder / "out.mp4")


def plain_video(output: Any, recipe: Any, sample_rate: int) -> Any:
    from takeone.models.base import Video
    from takeone.models.family_helpers import frames_to_uint8
    from takeone.models.ltx2.model import audio_to_numpy

    audio = audio_to_numpy(output.audio[0]) if recipe.audio else None
    return Video(frames_to_uint8(output.frames[0]), recipe.gen_fps, audio, sample_rate, 0)


def measure(device: Any, timer: StageTimer, work: Callable[[], None]) -> Run:
    import torch

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    timer.sync()
    start = time.perf_counter()
    work()
    timer.sync()
    end_to_end = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / GIB if cuda else None
    return Run(timer.take(), round(end_to_end, 4), None if peak is None else round(peak, 2))


# --- main ------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny models on CPU: checks the script works")
    parser.add_argument("--cases", default=",".join(c.key for c in CASES), help="comma-separated case keys")
    parser.add_argument("--share-transformer", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--text-encoder", choices=("auto", "gemma", "stub"), default="auto")
    parser.add_argument("--skip-plain", action="store_true", help="only the optimized path")
    parser.add_argument("--out", type=Path, help="JSON path (default: results/gpu_<gpu>_<date>.json)")
    return parser.parse_args(argv)


def setup(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Device, profile, components and what the JSON should say about them."""
    import torch

    from takeone.models.ltx2.tiny import build_tiny_ltx2_components
    from takeone.models.registry import get_profile

    if args.cpu_smoke:
        torch.set_num_threads(1)  # tiny models are latency-bound (see tests' conftest)
        profile = get_profile("ltx-2").scaled(TINY_SIZES, TINY_FRAMES, 32, {"stg_blocks": (1,)})
        return torch.device("cpu"), profile, build_tiny_ltx2_components(), {"models": "tiny"}
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: run with --cpu-smoke to check the script, or on a GPU for figures")
    device = torch.device("cuda")
    free, _total = torch.cuda.mem_get_info(device)
    share, text = plan_memory(args, free / GIB)
    profile = get_profile("ltx-2")
    if share and profile.speedups.cache is not None:
        profile = dataclasses.replace(profile, speedups=dataclasses.replace(profile.speedups, cache=None))
    info = {"models": "full-size, random weights", "shared_transformer": share, "text_encoder": text}
    return device, profile, build_full(device, share, text), info


def measure_plain(device: Any, components: Mapping[str, Any], plans: list[tuple[Case, Any, Any]], folder: Path,
                  timer: StageTimer) -> dict[str, Run]:  # fmt: skip
    """Each case through plain pipelines, after one untimed tiny run: lazy CUDA set-up (cuBLAS
    handles, kernel loading) is start-up cost here too, not the first case's."""
    from takeone.models.ltx2.model import vae_ratios
    from takeone.models.ltx2.warmup import shrunk, warmup_sizes

    pipes = plain_pipelines(components)
    rate = int(components["vocoder"].config.output_sampling_rate)
    _case, request, recipe = plans[0]
    size = warmup_sizes(*vae_ratios(components["vae"]), compiled=False)[0]
    run_plain(pipes, components, request, shrunk(recipe, *size), timer)
    timer.take()
    runs: dict[str, Run] = {}
    for case, request, recipe in plans:

        def work(request: Any = request, recipe: Any = recipe) -> None:
            output = run_plain(pipes, components, request, recipe, timer)
            deliver(plain_video(output, recipe, rate), recipe, folder, timer)

        runs[case.key] = measure(device, timer, work)
    return runs


def run_cases(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from takeone.models.ltx2.model import Ltx2Model, write_warmup_image
    from takeone.models.ltx2.warmup import warmup_recipes

    device, profile, components, info = setup(args)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    timer = StageTimer(sync)
    instrument(components, timer)
    cases = [case for case in CASES if case.key in args.cases.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="takeone-gpu-bench-"))
    image = write_warmup_image(folder)  # scaled to each stage's size like any upload
    requests = [(case, request_for(case, image)) for case in cases]
    plans = [(case, request, profile.recipe_for(request)) for case, request in requests]
    plain = {} if args.skip_plain else measure_plain(device, components, plans, folder, timer)
    started = time.perf_counter()
    model = Ltx2Model(components, device, speedups=profile.speedups, warmup_recipes=warmup_recipes(profile))
    model.warmup()
    warmup_s = time.perf_counter() - started
    timer.take()
    label_stages(model, timer)
    results = []
    for case, request, recipe in plans:

        def work(request: Any = request, recipe: Any = recipe) -> None:
            deliver(model.generate(request, recipe, lambda _d, _t: None, lambda: False), recipe, folder, timer)

        optimized = measure(device, timer, work)
        results.append(_row(case, plain.get(case.key), optimized, args.cpu_smoke))
    return _document(args, device, profile, info, model.speedup_report, round(warmup_s, 2), results)


def _row(case: Case, plain: Run | None, optimized: Run, smoke: bool) -> dict[str, Any]:
    floor = None if smoke else case.floor_s
    ratio = round(optimized.end_to_end_s / plain.end_to_end_s, 3) if plain else None
    floor_pct = round(100 * floor / optimized.end_to_end_s, 1) if floor else None
    return {
        "case": case.label,
        "key": case.key,
        "floor_s": floor,
        "plain": dataclasses.asdict(plain) if plain else None,
        "optimized": dataclasses.asdict(optimized),
        "ratio_optimized_over_plain": ratio,
        "floor_pct_of_optimized": floor_pct,
    }


def _document(args: argparse.Namespace, device: Any, profile: Any, info: dict[str, Any], report: Any,
              warmup_s: float, rows: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    import diffusers
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or 'unknown'})"
    return {
        "benchmark": "gpu_generate",
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "device": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        **info,
        "speedups": dataclasses.asdict(profile.speedups),
        "speedups_applied": report.applied,
        "speedups_skipped": report.skipped,
        "warmup_s": warmup_s,
        "cases": rows,
    }


def print_table(document: Mapping[str, Any]) -> None:
    print(f"# {document['device']}, {document['mode']}, warm-up {document['warmup_s']} s")
    print(f"# speed-ups applied: {'; '.join(document['speedups_applied']) or 'none on this device'}")
    header = ["case", "path", *STAGES, "end to end", "peak GiB", "floor s", "opt/plain", "% floor"]
    print(" | ".join(header))
    for row in document["cases"]:
        for path in ("plain", "optimized"):
            run = row[path]
            if run is None:
                continue
            extra = [row["floor_s"], row["ratio_optimized_over_plain"], row["floor_pct_of_optimized"]]
            cells = [row["case"], path, *run["stages"].values(), run["end_to_end_s"], run["peak_gib"]]
            cells += extra if path == "optimized" else ["", "", ""]
            print(" | ".join("n/a" if cell is None else str(cell) for cell in cells))


def default_out(document: Mapping[str, Any]) -> Path:
    if document["mode"] == "cpu-smoke":
        return Path(tempfile.gettempdir()) / "gpu_cpu-smoke.json"
    slug = re.sub(r"[^a-z0-9]+", "-", document["device"].lower()).strip("-")
    return RESULTS / f"gpu_{slug}_{document['date'][:10]}.json"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    document = run_cases(args)
    out = args.out or default_out(document)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print_table(document)
    print(f"wrote {out}")
    first = document["cases"][0]
    suffix = " (cpu smoke, tiny models)" if args.cpu_smoke else ""
    print(f"ltx-2 {first['case']} end to end: {first['optimized']['end_to_end_s']:.2f} s{suffix}")


if __name__ == "__main__":
    main()
