"""Wan's streaming VAE decode: latents in, uint8 frame chunks out, one latent frame at a time.

The pipelines decode a whole clip at once (``output_type="pt"``); here the pipeline returns
latents (``output_type="latent"``) and the Wan VAE, which already decodes latent frame by
latent frame with a causal cache, hands over each latent frame's output (4 frames, 1 for the
first) as a chunk, quantized to uint8 on the device, so the render step encodes one chunk
while the next decodes. With spatial tiling on it decodes in one pass (its tiles span the
whole clip). Every chunk equals the corresponding frames of the pipeline's own decode after
:func:`~takeone.models.family_helpers.frames_to_uint8`.

Example::

    latents = wan_denormalized(pipe.vae, output.frames)
    for chunk in wan_frame_chunks(pipe, latents):
        writer.write_frames(chunk)
"""

from __future__ import annotations

from typing import Any

import torch

from takeone.models.family_helpers import Chunks, Samples, quantized, whole_clip

# diffusers' pipelines and VAEs are untyped: ``Any``.
Pipeline = Any


def wan_denormalized(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """The Wan pipelines' last step before decoding: ``latents / (1 / std) + mean``, in the
    VAE's dtype on the VAE's execution device."""
    config = vae.config
    device = _execution_device(vae)
    latents = latents.to(device=device, dtype=vae.dtype)
    shape = (1, config.z_dim, 1, 1, 1)
    mean = torch.tensor(config.latents_mean).view(shape).to(latents.device, latents.dtype)
    inverse_std = 1.0 / torch.tensor(config.latents_std).view(shape).to(latents.device, latents.dtype)
    return latents / inverse_std + mean


def wan_frame_chunks(pipe: Pipeline, latents: torch.Tensor) -> Chunks:
    """Decode denormalized Wan ``latents`` (:func:`wan_denormalized`) into uint8 frame chunks,
    one latent frame's output at a time with the VAE's causal cache."""
    vae = pipe.vae
    ratio = int(vae.spatial_compression_ratio)
    wide = latents.shape[-1] > vae.tile_sample_min_width // ratio
    tall = latents.shape[-2] > vae.tile_sample_min_height // ratio
    if vae.use_tiling and (wide or tall):
        samples = whole_clip(lambda: vae.decode(latents, return_dict=False)[0])
    else:
        samples = _wan_frames(vae, latents)
    return quantized(pipe, samples)


def wan_frame_count(vae: Any, latents: torch.Tensor) -> int:
    """How many frames decoding Wan ``latents`` gives: ``(f - 1) * ratio + 1``."""
    return (int(latents.shape[2]) - 1) * int(vae.config.scale_factor_temporal) + 1


def _wan_frames(vae: Any, latents: torch.Tensor) -> Samples:
    """``AutoencoderKLWan._decode``'s loop, handing over each latent frame's output."""
    _onload(vae)
    try:
        with torch.no_grad():
            vae.clear_cache()
            hidden = vae.post_quant_conv(latents)
        for index in range(int(hidden.shape[2])):
            yield _wan_frame(vae, hidden[:, :, index : index + 1], first=index == 0)
    finally:
        vae.clear_cache()


def _wan_frame(vae: Any, hidden: torch.Tensor, first: bool) -> torch.Tensor:
    with torch.no_grad():
        vae._conv_idx = [0]
        extra = {"first_chunk": True} if first else {}
        out: torch.Tensor = vae.decoder(hidden, feat_cache=vae._feat_map, feat_idx=vae._conv_idx, **extra)
        if vae.config.patch_size is not None:
            out = _unpatchify(out, vae.config.patch_size)
        return torch.clamp(out, min=-1.0, max=1.0)


def _unpatchify(samples: torch.Tensor, patch_size: int) -> torch.Tensor:
    from diffusers.models.autoencoders import autoencoder_kl_wan

    wan: Any = autoencoder_kl_wan  # untyped
    result: torch.Tensor = wan.unpatchify(samples, patch_size=patch_size)
    return result


def _onload(vae: Any) -> None:
    """Run the offloading hook ``vae.decode`` would run (``enable_model_cpu_offload``), since
    the decode calls the VAE's parts directly."""
    hook = getattr(vae, "_hf_hook", None)
    if hook is not None:
        hook.pre_forward(vae)


def _execution_device(vae: Any) -> torch.device:
    from diffusers.utils.torch_utils import get_module_execution_device

    device: torch.device = get_module_execution_device(vae)
    return device
