"""LoRA files for tests: random low-rank weights for the tiny transformer, in two layouts."""

from __future__ import annotations

from pathlib import Path

TINY_TARGETS = ("transformer_blocks.0.attn1.to_q", "transformer_blocks.0.attn1.to_v",
                "transformer_blocks.1.ff.net.0.proj", "proj_in")


def make_lora(path: Path, layout: str = "diffusers", rank: int = 2, seed: int = 0,
              targets: tuple[str, ...] = TINY_TARGETS, strength: float = 1.0,
              shapes: dict[str, tuple[int, int]] | None = None) -> Path:
    """A random LoRA over ``targets`` of the tiny transformer (``shapes``: name -> (out, in)
    to override, e.g. a wrong shape or another model's modules)."""
    import torch
    from safetensors.torch import save_file

    from takeone.models.loras import transformer_linears
    from takeone.models.tiny.profile import TINY

    linears = dict(transformer_linears(TINY, None))
    linears.update(shapes or {})
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name in targets:
        out_features, in_features = linears[name]
        down = torch.randn(rank, in_features, generator=generator) * strength
        up = torch.randn(out_features, rank, generator=generator) * strength
        if layout == "kohya":
            stem = "lora_unet_" + name.replace(".", "_")
            state[f"{stem}.lora_down.weight"] = down
            state[f"{stem}.lora_up.weight"] = up
            state[f"{stem}.alpha"] = torch.tensor(float(rank))
        else:
            state[f"transformer.{name}.lora_A.weight"] = down
            state[f"transformer.{name}.lora_B.weight"] = up
    save_file(state, str(path))
    return path
