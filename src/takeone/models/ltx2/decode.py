"""LTX-2's streaming VAE decode: latents in, uint8 frame chunks out, one chunk at a time.

The pipelines decode a whole clip at once (``output_type="pt"``): for 10 s of 1080p that is
several GB of float frames, and encoding cannot start before the last one exists. Here the
last pipeline stage returns latents (``output_type="latent"``) and the clip is decoded piece
by piece with the VAE's own parts, each piece quantized to uint8 on the device and handed
over as soon as it is final, so the render step encodes one chunk while the next decodes.

:func:`ltx2_decoder_inputs`, :func:`ltx2_frame_chunks` and :func:`ltx2_audio` take the same
steps as the pipelines' non-latent branch (decode-time noise on the job's generator when the
VAE is timestep-conditioned; the audio VAE and vocoder). With temporal tiling on, the tiles of
``AutoencoderKLLTX2Video._temporal_tiled_decode`` are decoded one at a time (spatially tiled
inside when ``use_tiling`` and a tile is wider or taller than a spatial tile) and blended into
the next exactly as the VAE does, holding only the previous and the current tile; without it
the clip is decoded in one pass and handed over in chunks.

Every chunk is uint8 ``[n, H, W, 3]`` on the host, equal to the corresponding frames of the
pipeline's own ``output_type="pt"`` decode after :func:`~takeone.models.family_helpers.frames_to_uint8`.

Example::

    latents, timestep = ltx2_decoder_inputs(pipe, output.frames, generator, embeds.dtype)
    for chunk in ltx2_frame_chunks(pipe, latents, timestep):
        writer.write_frames(chunk)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor

from takeone.models.family_helpers import Chunks, Samples, quantized, whole_clip

# diffusers' pipelines and VAEs are untyped: ``Any``.
Pipeline = Any
# Lightricks' current tiling helpers decode in tiles of 768 px overlapping by 64 in space and
# 80 frames overlapping by 24 in time. Diffusers' defaults tile time in 16 frames with stride 8:
# for a 10 s clip about 3x the decode work, and a seam every 8 frames.
TILE_PIXELS, TILE_PIXELS_OVERLAP = 768, 64
TILE_FRAMES, TILE_FRAMES_OVERLAP = 80, 24


@dataclass(frozen=True)
class TemporalTiles:
    """LTX-2's temporal tiling, in the VAE's units (latent frames in, sample frames out).

    Tile ``k`` decodes latent frames ``[k * latent_stride, k * latent_stride + latent_size]``
    (one extra frame of context); its first ``blend`` frames are blended with the previous
    tile's last ones, and its first ``stride`` frames (``stride + 1`` for the first tile) are
    final once it is decoded.
    """

    latent_size: int
    latent_stride: int
    stride: int
    blend: int

    @classmethod
    def of(cls, vae: Any) -> TemporalTiles:
        """The tiling ``vae`` is set to (``enable_tiling`` changes it)."""
        ratio = int(vae.temporal_compression_ratio)
        size, stride = int(vae.tile_sample_min_num_frames), int(vae.tile_sample_stride_num_frames)
        return cls(latent_size=size // ratio, latent_stride=stride // ratio, stride=stride, blend=size - stride)


def use_reference_tiles(vae: Any) -> None:
    """Set ``vae``'s tile geometry to the reference's (it applies whenever tiling is on)."""
    vae.tile_sample_min_height = vae.tile_sample_min_width = TILE_PIXELS
    vae.tile_sample_stride_height = vae.tile_sample_stride_width = TILE_PIXELS - TILE_PIXELS_OVERLAP
    vae.tile_sample_min_num_frames = TILE_FRAMES
    vae.tile_sample_stride_num_frames = TILE_FRAMES - TILE_FRAMES_OVERLAP


def ltx2_frame_count(vae: Any, latents: torch.Tensor) -> int:
    """How many frames decoding ``latents`` ``[1, C, f, h, w]`` gives: ``(f - 1) * ratio + 1``."""
    return (int(latents.shape[2]) - 1) * int(vae.temporal_compression_ratio) + 1


def ltx2_decoder_inputs(
    pipe: Pipeline,
    latents: torch.Tensor,
    generator: torch.Generator,
    dtype: torch.dtype,
    decode_timestep: float = 0.0,
    decode_noise_scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The VAE's input and timestep for the denormalized video ``latents`` a pipeline returned.

    What the pipelines do before decoding: round the normalized latents to ``dtype`` (the
    prompt embeddings'), and when the VAE is timestep-conditioned mix in noise drawn from
    ``generator`` (the job's, after denoising, so a seed gives the same video), then
    denormalize and cast to the VAE's dtype. The defaults are the pipelines' own. Without
    timestep conditioning and with ``dtype`` already the latents', this is only the cast.
    """
    vae = pipe.vae
    conditioned = bool(vae.config.timestep_conditioning)
    if latents.dtype == dtype and not conditioned:
        return latents.to(vae.dtype), None
    mean, std, scaling = vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    latents = pipe._normalize_latents(latents, mean, std, scaling).to(dtype)
    timestep = None
    if conditioned:
        noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=dtype)
        noise_scale = decode_timestep if decode_noise_scale is None else decode_noise_scale
        timestep = torch.tensor([decode_timestep], device=latents.device, dtype=dtype)
        scale = torch.tensor([noise_scale], device=latents.device, dtype=dtype)[:, None, None, None, None]
        latents = (1 - scale) * latents + scale * noise
    latents = pipe._denormalize_latents(latents, mean, std, scaling)
    return latents.to(vae.dtype), timestep


def ltx2_frame_chunks(pipe: Pipeline, latents: torch.Tensor, timestep: torch.Tensor | None) -> Chunks:
    """Decode ``latents`` (from :func:`ltx2_decoder_inputs`) into uint8 frame chunks.

    Temporal tiles when the VAE would tile this clip in time (``use_framewise_decoding`` and
    more latent frames than a tile), one tile's final frames per chunk; otherwise one pass.
    """
    vae = pipe.vae
    tiles = TemporalTiles.of(vae)
    if vae.use_framewise_decoding and latents.shape[2] > tiles.latent_size:
        samples = _ltx2_tiles(vae, latents, timestep, tiles)
    else:
        samples = whole_clip(lambda: vae.decode(latents, timestep, return_dict=False)[0])
    return quantized(pipe, samples)


def ltx2_audio(pipe: Pipeline, audio_latents: torch.Tensor) -> torch.Tensor:
    """The waveform ``[1, channels, samples]`` for the denormalized audio latents a pipeline returned."""
    with torch.no_grad():
        audio_vae = pipe.audio_vae
        mel = audio_vae.decode(audio_latents.to(audio_vae.dtype), return_dict=False)[0]
        waveform: torch.Tensor = pipe.vocoder(mel)
    return waveform


def _ltx2_tiles(vae: Any, latents: torch.Tensor, timestep: torch.Tensor | None, tiles: TemporalTiles) -> Samples:
    """The VAE's temporal tiled decode, one tile's final frames at a time.

    Blending writes into the current tile in place and the next tile blends with that result,
    exactly as ``_temporal_tiled_decode`` does with its list of tiles.
    """
    remaining = ltx2_frame_count(vae, latents)
    previous: torch.Tensor | None = None
    for start in range(0, int(latents.shape[2]), tiles.latent_stride):
        tile = _ltx2_tile(vae, latents[:, :, start : start + tiles.latent_size + 1], timestep)
        if previous is None:
            final = tile[:, :, : tiles.stride + 1]
        else:
            with torch.no_grad():
                tile = vae.blend_t(previous, tile[:, :, :-1], tiles.blend)
            final = tile[:, :, : tiles.stride]
        previous = tile
        final = final[:, :, :remaining]
        remaining -= int(final.shape[2])
        if final.shape[2]:
            yield final


def _ltx2_tile(vae: Any, latents: torch.Tensor, timestep: torch.Tensor | None) -> torch.Tensor:
    """One temporal tile, spatially tiled when the VAE tiles and the tile exceeds a spatial tile."""
    ratio = int(vae.spatial_compression_ratio)
    wide = latents.shape[-1] > vae.tile_sample_min_width // ratio
    tall = latents.shape[-2] > vae.tile_sample_min_height // ratio
    with torch.no_grad():
        if vae.use_tiling and (wide or tall):
            decoded: torch.Tensor = vae.tiled_decode(latents, timestep, return_dict=True).sample
        else:
            decoded = vae.decoder(latents, timestep)
    return decoded
