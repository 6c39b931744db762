"""What a profile's speed-ups will do on this machine, said without importing torch.

``takeone profiles PROFILE`` and the server's start banner print it, so that an operator sees
before loading that, say, fp8 will fall back to bf16 because torchao is not installed. The
worker's ready line then says what really happened (``speed-up fell back: ...`` with the
error, for a speed-up that failed in its first kernel).

Example::

    speedup_lines(get_profile("ltx-2").speedups)
    # ['speed-ups: regional compile (inductor), fp8, attention auto',
    #  '  here: fp8 falls back to bf16 (torchao not installed); ...']
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sysconfig

from takeone.models.recipe import Speedups

# Attention packages "auto" can pick, fastest first (module to look for, what it gives).
ATTENTION_PACKAGES = (("flash_attn_interface", "FlashAttention 3"), ("flash_attn", "FlashAttention 2"))


def asked(speedups: Speedups) -> list[str]:
    """The speed-ups the profile asks for, in words."""
    parts = []
    if speedups.compile != "off":
        parts.append(f"{speedups.compile} compile ({speedups.compile_backend})")
    if speedups.fp8:
        parts.append("fp8")
    if speedups.attention_backend:
        parts.append(f"attention {speedups.attention_backend}")
    if speedups.cache:
        parts.append(f"{speedups.cache} cache")
    return parts


def outlook(speedups: Speedups) -> list[str]:
    """What this machine's packages and tools mean for them (a GPU's own limits show at load)."""
    notes = []
    if speedups.fp8:
        if _installed("torchao"):
            notes.append("fp8 via torchao on GPUs of compute capability >= 8.9")
        else:
            notes.append("fp8 falls back to bf16 (torchao not installed)")
    if speedups.compile != "off" and speedups.compile_backend == "inductor":
        compiler = c_compiler()
        notes.append(f"compile needs CUDA and a C compiler: {compiler}" if compiler
                     else "compile falls back to uncompiled (no C compiler found)")  # fmt: skip
    if speedups.attention_backend == "auto":
        found = [label for module, label in ATTENTION_PACKAGES if _installed(module)]
        notes.append(f"attention auto: {found[0]}" if found else "attention auto: cuDNN attention or PyTorch SDPA")
    return notes


def speedup_lines(speedups: Speedups) -> list[str]:
    """Two lines: what is asked, what this machine makes of it (empty when nothing is asked)."""
    wanted = asked(speedups)
    if not wanted:
        return []
    lines = [f"speed-ups: {', '.join(wanted)}"]
    if notes := outlook(speedups):
        lines.append(f"  here: {'; '.join(notes)}; the worker's ready line says what applied")
    return lines


def c_compiler() -> str | None:
    """The C compiler Triton and inductor would call, or None."""
    configured = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "").split(" ")[0]
    for candidate in (configured, "cc", "gcc", "clang"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
