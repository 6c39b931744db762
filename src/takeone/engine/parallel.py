"""Several devices on one video: the process group, the strategies, the per-step agreement.

A worker group is N processes (ranks) joined by ``torch.distributed``: NCCL between GPUs,
gloo between CPU ranks (so the path runs on any machine). Every rank loads the whole model and
runs the same render of the same job; the strategy decides which transformer work each rank
does:

- ``cfg``: classifier-free guidance runs the transformer on a batch of two (unconditional and
  conditional); each rank runs its half of that batch and an all-gather puts the two halves
  back together, so every rank holds the same guided prediction. Calls without guidance
  (batch of one: distilled stages, STG passes) run whole on every rank. Two ranks is the
  useful size; a larger group still gets two-way parallelism only.
- ``sequence``: diffusers' context-parallel API (:meth:`enable_parallelism` with a
  ``ContextParallelConfig`` of Ulysses degree N) splits the video tokens across the ranks and
  exchanges them around attention with all-to-all collectives. It needs GPUs: diffusers
  0.42 places each rank on an accelerator device while setting it up (on a machine without
  one, ``enable_parallelism`` fails with a ZeroDivisionError over zero devices), so a CPU
  group refuses it with a clear error instead.

Text encoding and the VAE decode run on every rank, on identical inputs: they are a small
part of a job next to the denoising steps, and running them everywhere keeps every rank's
code path (and so its collectives) identical with nothing to broadcast; only rank 0 keeps the
file. Cancellation is agreed at every step: rank 0 broadcasts its stop flag in the progress
callback, and every rank's ``should_cancel`` reads only that agreed flag, so all ranks leave
the denoising loop at the same step.

Example::

    init_group(rank, world, port, device)
    apply_strategy(model, "cfg", rank, world)
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Final

import torch
import torch.distributed as dist

STRATEGIES: Final = ("auto", "cfg", "sequence")
IDLE_TIMEOUT: Final = datetime.timedelta(days=7)  # ranks wait on pipes, not collectives, when idle


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init_group(rank: int, world: int, port: int, device: torch.device) -> None:
    """Join this process to the group of ``world`` ranks rendezvousing on localhost:``port``."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=IDLE_TIMEOUT)


def resolve_strategy(strategy: str, world: int, device: torch.device) -> str:
    """``auto``: CFG-parallel on two ranks or on CPU ranks, sequence parallelism on more GPUs."""
    if strategy not in STRATEGIES:
        raise ValueError(f"parallel strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if strategy != "auto":
        return strategy
    return "cfg" if world == 2 or device.type != "cuda" else "sequence"


def apply_strategy(model: Any, strategy: str, rank: int, world: int) -> str:
    """Make ``model``'s transformers split their work over the group; returns the strategy used."""
    device = torch.device(str(getattr(model, "device", "cpu")))
    chosen = resolve_strategy(strategy, world, device)
    transformers = [m for m in _transformers(model)]
    if not transformers:
        raise ValueError("this model exposes no transformer to run in parallel")
    if chosen == "cfg":
        for transformer in transformers:
            split_guidance_batch(transformer, rank, world)
    else:
        if backend_for(device) != "nccl":
            raise ValueError("--parallel sequence needs GPUs (NCCL): diffusers' context parallelism"
                             " places each rank on an accelerator; use --parallel cfg on CPU ranks")
        from diffusers import ContextParallelConfig

        config: Any = ContextParallelConfig
        for transformer in transformers:
            module: Any = transformer
            module.enable_parallelism(config=config(ulysses_degree=world))
    return chosen


def _transformers(model: Any) -> list[torch.nn.Module]:
    components = getattr(model, "components", {})
    names = ("transformer", "transformer_full", "transformer_2")
    return [components[n] for n in names if isinstance(components.get(n), torch.nn.Module)]


def split_guidance_batch(transformer: torch.nn.Module, rank: int, world: int) -> None:
    """Run each rank's share of a guided batch (keyword tensors whose first dimension is the
    batch) and all-gather the outputs; other calls run whole."""
    whole: Callable[..., Any] = transformer.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        hidden = kwargs.get("hidden_states")
        if args or not isinstance(hidden, torch.Tensor) or hidden.shape[0] < world \
                or hidden.shape[0] % world:
            return whole(*args, **kwargs)
        batch = int(hidden.shape[0])
        mine = {k: _share(v, batch, rank, world) for k, v in kwargs.items()}
        return _gathered(whole(**mine), world)

    transformer.forward = forward


def _share(value: Any, batch: int, rank: int, world: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch:
        return value.chunk(world, dim=0)[rank]
    return value


def _gathered(output: Any, world: int) -> Any:
    if isinstance(output, torch.Tensor):
        return all_gather_cat(output, world)
    if isinstance(output, tuple):
        return tuple(_gathered(item, world) for item in output)
    if isinstance(output, dict):  # diffusers' BaseOutput is an ordered dict
        for key, value in list(output.items()):
            output[key] = _gathered(value, world)
        return output
    return output


def all_gather_cat(tensor: torch.Tensor, world: int) -> torch.Tensor:
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class StepAgreement:
    """One stop flag, decided by rank 0 at each step and broadcast to every rank.

    Example::

        agree = StepAgreement(device)
        stop = agree.step(local_stop)   # the same answer on every rank
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device if device.type == "cuda" else torch.device("cpu")
        self.stop = False

    def step(self, local_stop: bool) -> bool:
        flag = torch.tensor([1 if local_stop else 0], dtype=torch.int32, device=self.device)
        dist.broadcast(flag, src=0)
        self.stop = bool(flag.item())
        return self.stop

    def reset(self) -> None:
        self.stop = False
