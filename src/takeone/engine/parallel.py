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
  exchanges them around attention with all-to-all collectives (gloo has them, so it runs on
  CPU ranks too). diffusers 0.42 builds the device mesh on the accelerator and picks the rank's
  device as ``rank % torch.accelerator.device_count()``, a ZeroDivisionError on a machine
  without one; on CPU ranks the same config is therefore set up on a CPU mesh here
  (:func:`_resolve_on_cpu`) and the rest of ``enable_parallelism`` runs unchanged. Wan's
  transformer supports it. LTX-2's does not yet, whatever the device: its context-parallel
  plan shards rope tensors of 3 dimensions, LTX-2's "split" rope gives 4 (B, H, T, D/2), so
  diffusers leaves them whole and attention fails on mismatched shapes; such a model is
  refused up front with that reason (:func:`sequence_gap`), and ``auto`` picks ``cfg`` for it.

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
import functools
from collections.abc import Callable
from typing import Any, Final

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

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


def resolve_strategy(strategy: str, transformers: list[torch.nn.Module], world: int) -> str:
    """``auto``: sequence parallelism where every transformer supports it (Wan: its pipeline
    runs the guided passes one at a time, so CFG-parallel would have nothing to split), else
    CFG-parallel (LTX-2 batches its guided passes). ``sequence`` on a model that cannot do it
    is refused with the reason."""
    if strategy not in STRATEGIES:
        raise ValueError(f"parallel strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    gaps = [gap for t in transformers if (gap := sequence_gap(t, world)) is not None]
    if strategy == "sequence" and gaps:
        raise ValueError(f"--parallel sequence cannot run this model: {gaps[0]}; use --parallel cfg")
    if strategy != "auto":
        return strategy
    return "cfg" if gaps else "sequence"


def sequence_gap(transformer: torch.nn.Module, world: int) -> str | None:
    """Why diffusers' context parallelism cannot split ``transformer`` over ``world`` ranks
    (None: it can)."""
    import diffusers

    name, config = type(transformer).__name__, getattr(transformer, "config", {})
    if not getattr(transformer, "_cp_plan", None):
        return f"{name} has no context-parallel plan in diffusers {diffusers.__version__}"
    if config.get("rope_type") == "split":
        return (f"{name}'s context-parallel plan in diffusers {diffusers.__version__} shards 3-dimensional"
                " rope tensors, and its 'split' rope gives 4 (B, H, T, D/2)")
    heads = int(config.get("num_attention_heads", 0))
    if heads % world:
        return f"Ulysses splits {name}'s {heads} attention heads over the ranks, and {world} does not divide them"
    return None


def apply_strategy(model: Any, strategy: str, rank: int, world: int) -> str:
    """Make ``model``'s transformers split their work over the group; returns the strategy used."""
    device = torch.device(str(getattr(model, "device", "cpu")))
    transformers = [m for m in _transformers(model)]
    if not transformers:
        raise ValueError("this model exposes no transformer to run in parallel")
    chosen = resolve_strategy(strategy, transformers, world)
    for transformer in transformers:
        if chosen == "cfg":
            split_guidance_batch(transformer, rank, world)
        else:
            split_sequence(transformer, world, device)
    return chosen


def split_sequence(transformer: torch.nn.Module, world: int, device: torch.device) -> None:
    """diffusers' Ulysses context parallelism over the whole group."""
    from diffusers import ContextParallelConfig

    module: Any = transformer
    if device.type != "cuda":
        module._resolve_parallel_config = functools.partial(_resolve_on_cpu, module)
    config: Any = ContextParallelConfig
    module.enable_parallelism(config=config(ulysses_degree=world))


def _resolve_on_cpu(module: Any, config: Any) -> Any:
    """What diffusers' ``_resolve_parallel_config`` does, with the mesh on the CPU (gloo)."""
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

    if isinstance(config, ContextParallelConfig):
        config = ParallelConfig(context_parallel_config=config)
    cp = config.context_parallel_config
    mesh = cp.mesh or init_device_mesh("cpu", cp.mesh_shape, mesh_dim_names=cp.mesh_dim_names)
    config.setup(dist.get_rank(), dist.get_world_size(), torch.device("cpu"), mesh=mesh)
    module._parallel_config = config
    return config


def _transformers(model: Any) -> list[torch.nn.Module]:
    """Every transformer the model runs: its own components (LTX-2), or those of each of its
    pipelines (Wan, which loads them all first: one loaded later would run unsplit)."""
    load_all = getattr(model, "load_all", None)
    if load_all is not None:
        load_all()
    sets = [getattr(model, "components", {})]
    sets += [pipe.components for pipe in getattr(model, "pipelines", {}).values()]
    names = ("transformer", "transformer_full", "transformer_2")
    found: dict[int, torch.nn.Module] = {}
    for components in sets:
        for name in names:
            if isinstance(part := components.get(name), torch.nn.Module):
                found.setdefault(id(part), part)
    return list(found.values())


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
