"""GPU speed-ups for the LTX-2 transformers, chosen per profile and applied once at load time.

A :class:`~takeone.models.recipe.Speedups` value sits on every profile; the loader hands it
to :class:`~takeone.models.ltx2.model.Ltx2Model`, which calls :func:`apply_speedups` once
the components are on their device. Each option is independent and falls back to the plain
path with a logged reason when this machine cannot use it, so a profile tuned for an H100
still loads on a CPU or an older GPU:

- ``compile="regional"``: ``torch.compile`` of the repeated transformer block only (diffusers'
  ``compile_repeated_blocks``); 48 identical blocks share one compiled graph, so compiling
  takes seconds instead of minutes. Inductor runs on CUDA only here (on CPU its C++ code
  generation takes minutes); other backends (``eager``, ``aot_eager``: what the tests use to
  exercise the path cheaply) run anywhere. Compilation happens lazily, in the model's
  warm-up; a compile error there (an inductor or Triton failure, no C compiler, a graph
  needing more recompiles than :data:`RECOMPILE_LIMIT`) makes the model fall back to the
  plain path with a logged reason instead of failing to start (:func:`compile_failure`,
  :func:`uncompile`).
- ``fp8=True``: float8 weights and dynamic float8 activations (per row) for the linear layers
  inside the transformer blocks, via torchao, on GPUs with compute capability 8.9 or more
  (Ada, Hopper, Blackwell). torchao is optional: it is imported only here, only then.
  Components streamed from host RAM (group offloading) are left in bf16.
- ``attention_backend``: diffusers' attention dispatcher backend for every attention module
  that gets no mask (self-attention and audio/video cross-attention). The text
  cross-attentions get a padding mask, which flash kernels refuse, so they stay on PyTorch's
  SDPA. ``"auto"`` picks the fastest backend installed: FlashAttention 3, cuDNN attention,
  FlashAttention 2; none on CPU. Hub-downloaded kernels are never chosen (serving is offline).
- ``vae_tiling``: ``"auto"`` tiles the VAE decode above the profile's ``vae_tiling_above``
  (memory), ``"on"``/``"off"`` force it; applied when recipes are made.
- ``cache``: diffusers' FirstBlockCache or TaylorSeer hooks on ``transformer_full`` only, the
  guided 40-step stage 1 of the quality tier. Step-distilled stages (8 and 3 steps) have too few, too
  different steps to reuse anything, so they never get a cache.

Example::

    Speedups(compile="regional", fp8=True, attention_backend="auto")
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from takeone.models.recipe import Speedups

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CPU_SLOW_BACKENDS = ("inductor",)
# Each distinct code path (pipeline kind, transformer, guidance terms, stage) at each warm-up
# size is one more graph of the one block code object: the tiny ltx-2 plan alone needs 14,
# past dynamo's default limit of 8, beyond which dynamo runs the block eagerly, silently.
RECOMPILE_LIMIT = 64
FP8_MIN_CAPABILITY = (8, 9)
# Fastest first; all run in-process (no kernel download at serving time).
AUTO_ATTENTION = ("_flash_3", "_native_cudnn", "flash")
# LTX-2 attention modules that receive the text padding mask: flash kernels refuse masks.
MASKED_ATTENTION = ("attn2", "audio_attn2")
CACHED_TRANSFORMER = "transformer_full"
COMPILER_MODULES = ("torch._dynamo", "torch._inductor", "triton")
TRANSFORMERS = ("transformer", "transformer_full")
FP8_APPLIED = "fp8 linear layers (torchao, dynamic per-row activations)"
ATTENTION_NOTE = "(text cross-attention stays native)"


@dataclass
class SpeedupReport:
    """What :func:`apply_speedups` did, one line per option and transformer, for the log."""

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    compiled: bool = False

    def skip(self, line: str) -> None:
        log.warning("speed-up skipped: %s", line)
        self.skipped.append(line)

    def apply(self, line: str) -> None:
        log.info("speed-up applied: %s", line)
        self.applied.append(line)


def apply_speedups(
    components: Mapping[str, Any], speedups: Speedups, device: torch.device, offloaded: Collection[str] = ()
) -> SpeedupReport:
    """Apply ``speedups`` to the loaded transformers in place (fp8, attention, cache, compile).

    The order matters: quantize before compiling (so the compiled graph sees float8 linears)
    and attach cache hooks before compiling (so the hooks' forward is what gets traced).
    """
    report = SpeedupReport()
    try:
        backend = resolve_attention_backend(speedups.attention_backend, device, report)
    except Exception as exc:  # noqa: BLE001 - a speed-up that cannot be chosen costs speed, not the worker
        report.skip(f"attention backend {speedups.attention_backend!r} could not be checked ({_describe(exc)}); "
                    "using native SDPA")  # fmt: skip
        backend = None
    done: set[int] = set()
    for name in TRANSFORMERS:
        module = components.get(name)
        if module is None or id(module) in done:
            continue  # one module in two roles (a benchmark's shared DiT) is treated once
        done.add(id(module))
        if speedups.fp8:
            _fp8(name, module, device, name in offloaded, report)
        if backend is not None:
            _attention(name, module, backend, report)
        if speedups.cache is not None and name == CACHED_TRANSFORMER:
            attach_cache(module, speedups)
            report.apply(f"{name}: {speedups.cache} cache")
        if speedups.compile == "regional":
            _compile(name, module, speedups, device, report)
    return report


# --- fp8 -------------------------------------------------------------------------------


def fp8_unavailable_reason(device: torch.device, capability: tuple[int, int] | None = None) -> str | None:
    """Why fp8 cannot run on ``device`` (``None`` when it can); ``capability`` overrides the query."""
    if device.type != "cuda":
        return f"fp8 needs a CUDA GPU with compute capability >= 8.9; this device is {device.type}"
    if capability is None:
        import torch

        capability = torch.cuda.get_device_capability(device)
    if tuple(capability) < FP8_MIN_CAPABILITY:
        return f"fp8 needs compute capability >= 8.9; this GPU is sm_{capability[0]}{capability[1]}"
    try:
        importlib.import_module("torchao")
    except ImportError:
        return "fp8 needs the optional torchao package (pip install torchao); running in bf16"
    except Exception as exc:  # noqa: BLE001 - installed but broken (say, built for another torch)
        return f"torchao does not import ({_describe(exc)}); running in bf16"
    return None


def _fp8(name: str, module: Any, device: torch.device, offloaded: bool, report: SpeedupReport) -> None:
    reason = fp8_unavailable_reason(device)
    if reason is None and offloaded:
        reason = "fp8 is not combined with group offloading (weights stream from host RAM in bf16)"
    if reason is not None:
        report.skip(f"{name}: {reason}")
        return
    try_fp8(name, module, device, report)


def try_fp8(name: str, module: Any, device: torch.device, report: SpeedupReport) -> bool:
    """Quantize ``module`` to fp8; on any error put back what was quantized (bf16), say why, go on."""
    try:
        quantize_fp8(module, device)
    except Exception as exc:  # noqa: BLE001 - torchao failing costs speed, never the worker
        restored = dequantize_fp8(module)
        report.skip(f"{name}: fp8 failed ({_describe(exc)}); running in bf16"
                    + (f" ({restored} layers put back)" if restored else ""))  # fmt: skip
        return False
    report.apply(f"{name}: {FP8_APPLIED}")
    return True


def dequantize_fp8(module: Any) -> int:
    """Put every quantized linear weight of ``module`` back as a plain tensor in its original
    dtype; returns how many there were (torchao's tensors know how to dequantize themselves)."""
    import torch

    count = 0
    for sub in module.modules():
        weight = getattr(sub, "weight", None)
        if not isinstance(sub, torch.nn.Linear) or weight is None or type(weight) in (torch.Tensor, torch.nn.Parameter):
            continue
        if callable(getattr(weight, "dequantize", None)):
            sub.weight = torch.nn.Parameter(weight.dequantize(), requires_grad=False)
            count += 1
    return count


def quantize_fp8(module: Any, device: torch.device | None = None) -> None:
    """Float8 weights + dynamic float8 activations for the blocks' linear layers (torchao).

    Embeddings, projections in and out and the timestep MLPs stay bf16: they are a sliver of
    the FLOPs and the most sensitive to precision. fp8 GEMMs need both sizes divisible by 16.
    With ``device``, each layer moves there just before it is quantized (then the rest of the
    module), so device memory peaks at the float8 model plus one bf16 layer.
    """
    quantization: Any = importlib.import_module("torchao.quantization")  # optional: no stubs
    config = quantization.Float8DynamicActivationFloat8WeightConfig(granularity=quantization.PerRow())
    quantization.quantize_(module, config, filter_fn=fp8_eligible, device=device)


def fp8_eligible(module: Any, fqn: str) -> bool:
    """A linear layer inside a transformer block with fp8-GEMM-friendly sizes."""
    import torch

    if not isinstance(module, torch.nn.Linear) or not fqn.startswith("transformer_blocks."):
        return False
    return module.in_features % 16 == 0 and module.out_features % 16 == 0


# --- attention -------------------------------------------------------------------------


def resolve_attention_backend(requested: str | None, device: torch.device, report: SpeedupReport) -> str | None:
    """The dispatcher backend to use: ``requested``, the best of ``AUTO_ATTENTION`` for
    ``"auto"`` on CUDA, or ``None`` (PyTorch's SDPA) when nothing better can run here."""
    if requested is None:
        return None
    if requested == "auto":
        if device.type != "cuda":
            return None
        return next((name for name in AUTO_ATTENTION if attention_backend_usable(name)), None)
    if not attention_backend_usable(requested):
        report.skip(f"attention backend {requested!r} is not usable here; using native SDPA")
        return None
    return requested


def attention_backend_usable(name: str) -> bool:
    """Whether diffusers knows ``name`` and its package (flash-attn, sageattention...) is installed."""
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    try:
        backend = AttentionBackendName(name)
        _check_attention_backend_requirements(backend)
    except (ValueError, RuntimeError):
        return False
    return not name.endswith("_hub")


def _attention(name: str, module: Any, backend: str, report: SpeedupReport) -> None:
    try:
        set_attention_backend(module, backend)
    except Exception as exc:  # noqa: BLE001 - costs speed, never the worker
        set_attention_backend(module, None)
        report.skip(f"{name}: attention backend {backend} failed ({_describe(exc)}); using native SDPA")
        return
    report.apply(f"{name}: attention backend {backend} {ATTENTION_NOTE}")


def set_attention_backend(module: Any, backend: str | None) -> int:
    """Point every unmasked attention processor of ``module`` at ``backend`` (``None``: back to
    the default, PyTorch's SDPA); returns how many processors had another backend before.

    diffusers' own ``set_attention_backend`` would also switch the masked text
    cross-attentions and the process-wide default (which the text connectors use), so the
    per-processor field it sets is set here for the right modules only.
    """
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_dispatch import AttentionBackendName

    chosen = AttentionBackendName(backend) if backend is not None else None
    changed = 0
    for name, sub in module.named_modules():
        if not isinstance(sub, AttentionModuleMixin) or name.rsplit(".", 1)[-1] in MASKED_ATTENTION:
            continue
        processor = getattr(sub, "processor", None)
        if processor is not None and hasattr(processor, "_attention_backend"):
            changed += processor._attention_backend != chosen
            processor._attention_backend = chosen
    return changed


def drop_runtime_speedups(components: Mapping[str, Any], report: SpeedupReport, why: str) -> list[str]:
    """After a generation failed with fp8 or an attention backend in place (they apply without
    error but can fail in their first kernel): take both out of the transformers, say why in
    ``report``, and return what was dropped (empty: neither was in place, the failure is another)."""
    dropped = []
    for name, module in _distinct_transformers(components):
        if set_attention_backend(module, None):
            dropped.append(f"{name}: attention backend")
        if dequantize_fp8(module):
            dropped.append(f"{name}: fp8")
    for what in dropped:
        report.applied = [line for line in report.applied if not line.startswith(what)]
        report.skip(f"{what} failed {why}; running without it")
    return dropped


def _distinct_transformers(components: Mapping[str, Any]) -> list[tuple[str, Any]]:
    seen: set[int] = set()
    found = []
    for name in TRANSFORMERS:
        module = components.get(name)
        if module is not None and id(module) not in seen:
            seen.add(id(module))
            found.append((name, module))
    return found


def _describe(exc: BaseException) -> str:
    from takeone.models.family_helpers import describe

    return describe(exc)


# --- feature caches --------------------------------------------------------------------


def attach_cache(module: Any, speedups: Speedups) -> None:
    """Enable ``speedups.cache`` on ``module`` (the guided stage-1 transformer of the quality tier)."""
    from diffusers.hooks.first_block_cache import FirstBlockCacheConfig
    from diffusers.hooks.taylorseer_cache import TaylorSeerCacheConfig

    if speedups.cache == "first_block":
        register_ltx2_block()
        module.enable_cache(FirstBlockCacheConfig(threshold=speedups.cache_threshold))
        return
    import torch

    last = len(module.transformer_blocks) - 1
    # Lite TaylorSeer at block granularity: on predicted steps every block but the last
    # returns zeros cheaply and the last block's (video, audio) output is extrapolated.
    # diffusers' own lite patterns assume one output head; LTX-2 has a video and an audio one.
    module.enable_cache(
        TaylorSeerCacheConfig(
            cache_interval=speedups.cache_interval,
            disable_cache_before_step=speedups.cache_warmup_steps,
            taylor_factors_dtype=torch.float32,
            skip_predict_identifiers=[rf"transformer_blocks\.{index}" for index in range(last)],
            cache_identifiers=[rf"transformer_blocks\.{last}"],
        )
    )


def reset_cache(module: Any) -> None:
    """Forget cached features before a new generation: a cancelled job ends mid-denoise and
    the pipeline's own reset (at the end of a call) never runs."""
    if getattr(module, "is_cache_enabled", False):
        module._reset_stateful_cache()


def register_ltx2_block() -> None:
    """Teach FirstBlockCache LTX-2's block: it carries (video, audio) hidden states, not
    (hidden, text) as the hook assumes, so "encoder_hidden_states" must mean the audio stream."""
    from diffusers.hooks._helpers import (
        TransformerBlockMetadata,
        TransformerBlockRegistry,
    )
    from diffusers.models.transformers.transformer_ltx2 import LTX2VideoTransformerBlock

    if LTX2VideoTransformerBlock in TransformerBlockRegistry._registry:
        return

    @dataclass
    class AudioVideoBlockMetadata(TransformerBlockMetadata):
        def _get_parameter_from_args_kwargs(self, identifier: str, args: Any = (), kwargs: Any = None) -> Any:
            name = "audio_hidden_states" if identifier == "encoder_hidden_states" else identifier
            return super()._get_parameter_from_args_kwargs(name, args, kwargs)

    metadata = AudioVideoBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1)
    TransformerBlockRegistry.register(model_class=LTX2VideoTransformerBlock, metadata=metadata)


# --- compilation -----------------------------------------------------------------------


def _compile(name: str, module: Any, speedups: Speedups, device: torch.device, report: SpeedupReport) -> None:
    if device.type != "cuda" and speedups.compile_backend in CPU_SLOW_BACKENDS:
        report.skip(f"{name}: {speedups.compile_backend} compilation runs on CUDA only")
        return
    import torch._dynamo

    config: Any = torch._dynamo.config
    config.recompile_limit = max(int(config.recompile_limit), RECOMPILE_LIMIT)
    try:
        compile_blocks(module, speedups)
    except Exception as exc:  # noqa: BLE001 - an unknown backend or mode: costs speed, never the worker
        uncompile({name: module})
        report.skip(f"{name}: torch.compile could not be set up ({_describe(exc)}); running uncompiled")
        return
    report.compiled = True
    report.apply(f"{name}: regional torch.compile ({speedups.compile_backend}, mode {speedups.compile_mode})")


def compile_blocks(module: Any, speedups: Speedups) -> None:
    """``torch.compile`` each repeated transformer block (one graph, reused by all 48).

    ``fullgraph`` stays off: the cache hooks decide per step outside the graph, and a graph
    break must cost speed, never a failed job. Shapes are left to dynamo's automatic dynamic
    marking, which :meth:`Ltx2Model.warmup` triggers by warming up at two sizes.
    """
    options: dict[str, Any] = {"backend": speedups.compile_backend, "fullgraph": False}
    if speedups.compile_mode is not None:
        options["mode"] = speedups.compile_mode
    if getattr(module, "_repeated_blocks", None):
        module.compile_repeated_blocks(**options)
        return
    for block in module.transformer_blocks:
        block.compile(**options)


@contextmanager
def strict_recompiles() -> Iterator[None]:
    """Make hitting dynamo's recompile limit an error instead of a silent eager fallback (the
    warm-up runs under it, so a plan that needs more graphs than the limit is caught at start)."""
    import torch._dynamo

    config: Any = torch._dynamo.config
    before = config.fail_on_recompile_limit_hit
    config.fail_on_recompile_limit_hit = True
    try:
        yield
    finally:
        config.fail_on_recompile_limit_hit = before


def compile_failure(exc: BaseException) -> BaseException | None:
    """The ``torch.compile`` error behind ``exc`` (itself or a cause), or ``None``: dynamo,
    inductor and Triton errors, however the pipeline call wrapped them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith(COMPILER_MODULES):
            return current
        current = current.__cause__ or current.__context__
    return None


def uncompile(components: Mapping[str, Any]) -> list[str]:
    """Drop every compiled block of the transformers and dynamo's caches: the plain path again.
    Returns the names of the transformers that had compiled blocks."""
    import torch._dynamo

    names = []
    for name in TRANSFORMERS:
        module = components.get(name)
        if module is None:
            continue
        blocks = [sub for sub in module.modules() if getattr(sub, "_compiled_call_impl", None) is not None]
        for block in blocks:
            block._compiled_call_impl = None
        if blocks:
            names.append(name)
    torch._dynamo.reset()
    return names
