"""Which GPUs this machine has, found without importing torch (the API process never does),
and the local workers they make: one per GPU, or per group of ``--gpus-per-job`` GPUs."""

from __future__ import annotations

import logging
import shutil
import subprocess

from takeone.core.errors import InvalidRequest
from takeone.core.settings import Settings
from takeone.engine.config import WorkerConfig


def count_gpus() -> int:
    """NVIDIA GPUs visible to ``nvidia-smi``; 0 where there is none or no driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def gpu_groups(gpus: list[str], per_job: int) -> list[str]:
    """GPUs in groups of ``per_job`` (``"0,1"``); GPUs that do not fill a group are logged,
    not used (on a machine without GPUs a group is ``per_job`` CPU ranks)."""
    from takeone.dispatch.local.group import group_devices

    groups, left = group_devices(gpus, per_job)
    if left:
        logging.getLogger("takeone.dispatcher").warning(
            "GPU %s left unused: %d GPUs do not fill groups of %d (--gpus-per-job)",
            ",".join(left), len(gpus), per_job)
    if gpus and not groups:
        raise InvalidRequest("--gpus-per-job", per_job, f"this machine has only {len(gpus)} GPU(s)")
    return groups


def local_gpus(settings: Settings) -> list[str]:
    return list(settings.devices) if settings.devices else [str(i) for i in range(count_gpus())]


def unused_gpus(settings: Settings) -> list[str]:
    """GPUs that do not fill a group of ``--gpus-per-job`` (left idle, and said so)."""
    from takeone.dispatch.local.group import group_devices

    return group_devices(local_gpus(settings), settings.gpus_per_job)[1]


def worker_configs(settings: Settings) -> list[WorkerConfig]:
    """One worker per GPU, or one on a CPU-only machine (``--workers`` overrides)."""
    gpus = local_gpus(settings)
    if settings.gpus_per_job > 1:
        gpus = gpu_groups(gpus, settings.gpus_per_job)
    count = settings.workers or max(len(gpus), 1)
    return [WorkerConfig.from_settings(settings, gpus[i % len(gpus)] if gpus else None)
            for i in range(count)]
