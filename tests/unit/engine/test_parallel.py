"""The worker group's pieces that run without a model: strategy choice, each rank's share of a
guided batch, the wrapped transformer in a real (one-rank, gloo) process group, and the stop
flag every rank agrees on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.distributed as dist

from takeone.engine.parallel import (
    StepAgreement,
    _share,
    apply_strategy,
    backend_for,
    init_group,
    resolve_strategy,
)

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


class Transformer(torch.nn.Module):
    """What the choice reads of a transformer: diffusers' context-parallel plan and config."""

    def __init__(self, plan: bool, heads: int = 4, rope_type: str = "interleaved") -> None:
        super().__init__()
        self._cp_plan = {"": "split"} if plan else None
        self.config = {"num_attention_heads": heads, "rope_type": rope_type}


SPLITS, NO_PLAN = Transformer(plan=True), Transformer(plan=False)
SPLIT_ROPE, ODD_HEADS = Transformer(plan=True, rope_type="split"), Transformer(plan=True, heads=3)


@pytest.mark.parametrize("strategy,transformers,chosen", [
    ("auto", [SPLITS], "sequence"), ("auto", [SPLITS, SPLITS], "sequence"), ("auto", [SPLITS, NO_PLAN], "cfg"),
    ("auto", [SPLIT_ROPE], "cfg"), ("auto", [ODD_HEADS], "cfg"), ("cfg", [SPLITS], "cfg"),
    ("sequence", [SPLITS], "sequence"),
])
def test_the_strategy(strategy: str, transformers: list[torch.nn.Module], chosen: str) -> None:
    assert resolve_strategy(strategy, transformers, 2) == chosen


@pytest.mark.parametrize("transformer,reason", [
    (NO_PLAN, "has no context-parallel plan"), (SPLIT_ROPE, "'split' rope gives 4"),
    (ODD_HEADS, "3 attention heads over the ranks, and 2 does not divide them"),
])
def test_sequence_on_a_model_that_cannot_split_names_the_reason(transformer: torch.nn.Module, reason: str) -> None:
    with pytest.raises(ValueError, match="--parallel sequence cannot run this model") as caught:
        resolve_strategy("sequence", [transformer], 2)
    assert reason in str(caught.value)


def test_an_unknown_strategy_names_the_choices() -> None:
    with pytest.raises(ValueError, match="auto, cfg, sequence, not 'tensor'"):
        resolve_strategy("tensor", [SPLITS], 2)


def test_the_backend_follows_the_device() -> None:
    assert backend_for(CPU) == "gloo" and backend_for(GPU) == "nccl"


def test_each_rank_takes_its_half_of_a_guided_batch() -> None:
    batch = torch.arange(8).reshape(2, 4)
    assert torch.equal(_share(batch, 2, 0, 2), batch[:1]) and torch.equal(_share(batch, 2, 1, 2), batch[1:])
    other = torch.ones(3, 4)  # not the batch's first dimension: every rank gets it whole
    assert _share(other, 2, 1, 2) is other
    scalar = torch.tensor(0.5)
    assert _share(scalar, 2, 1, 2) is scalar and _share("text", 2, 1, 2) == "text"


class Pipeline:
    """Just what apply_strategy reads of a diffusers pipeline: its components and device."""

    def __init__(self, **components: Any) -> None:
        self.components = components
        self.device = "cpu"


class Denoiser(torch.nn.Module):
    def __init__(self, shape: str = "tensor") -> None:
        super().__init__()
        self.calls: list[int] = []
        self.shape = shape

    def forward(self, hidden_states: torch.Tensor | None = None, timestep: Any = None) -> Any:
        assert hidden_states is not None
        self.calls.append(int(hidden_states.shape[0]))
        out = hidden_states * 2
        if self.shape == "tuple":
            return (out,)
        if self.shape == "dict":
            return {"sample": out}
        return out


def test_a_pipeline_without_a_transformer_or_a_plan_to_split_is_refused() -> None:
    with pytest.raises(ValueError, match="no transformer"):
        apply_strategy(Pipeline(vae=torch.nn.Linear(1, 1)), "cfg", 0, 2)
    with pytest.raises(ValueError, match="Denoiser has no context-parallel plan"):
        apply_strategy(Pipeline(transformer=Denoiser()), "sequence", 0, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def one_rank() -> Iterator[None]:
    if dist.is_initialized():
        pytest.fail("a process group is already set up in this process")
    init_group(0, 1, _free_port(), CPU)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("shape", ["tensor", "tuple", "dict"])
def test_the_wrapped_transformer_gathers_its_share(one_rank: None, shape: str) -> None:
    model = Denoiser(shape)
    both = Denoiser(shape)
    assert apply_strategy(Pipeline(transformer=model, transformer_2=both), "auto", 0, 1) == "cfg"
    hidden = torch.arange(6.0).reshape(2, 3)
    out = model(hidden_states=hidden, timestep=torch.tensor([1.0, 1.0]))
    tensor = out if shape == "tensor" else out[0] if shape == "tuple" else out["sample"]
    assert torch.equal(tensor, hidden * 2)
    assert model.calls == [2]
    model(hidden)  # a positional call runs whole
    assert model.calls == [2, 2]


def test_every_rank_reads_the_agreed_stop_flag(one_rank: None) -> None:
    agree = StepAgreement(CPU)
    assert agree.step(False) is False and agree.stop is False
    assert agree.step(True) is True and agree.stop is True
    agree.reset()
    assert agree.stop is False
