"""Tiny random-weight LTX-2.5 components: the 2.5 architecture at the tiny profile's scale.

What makes them 2.5 rather than 2.0, as in diffusers' conversion of the real checkpoint:

- a Gemma 4 (``Gemma4UnifiedForConditionalGeneration``) text encoder, 2 layers of width 32,
  with a minimal vision and audio tower it never runs for text prompts;
- connectors with per-modality projections and gated attention, whose outputs are the
  transformer's own widths (the 2.3+ transformer takes no caption projection);
- a transformer with gated attention, cross-attention modulation, the perturbed-attention
  (STG) path, no video FFN bias and the keyframe position embedding;
- a vocoder with bandwidth extension: 16 kHz from the mel frames, then 48 kHz;
- the same tiny video VAE, audio VAE, latent upsampler and character tokenizer as the tiny
  LTX-2 components (see :mod:`.tiny`), and a scheduler without resolution shifting (the real
  repo ships the distilled schedule's config).

Example::

    components = build_tiny_ltx25_components()
"""

from __future__ import annotations

from typing import Any

from diffusers import LTX2VideoTransformer3DModel
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE
from transformers import Gemma4UnifiedForConditionalGeneration
from transformers.models.gemma4_unified.configuration_gemma4_unified import (
    Gemma4UnifiedAudioConfig,
    Gemma4UnifiedConfig,
    Gemma4UnifiedTextConfig,
    Gemma4UnifiedVisionConfig,
)

from takeone.models.family_helpers import seeded
from takeone.models.ltx2 import tiny

_Transformer: Any = LTX2VideoTransformer3DModel
_TextEncoder: Any = Gemma4UnifiedForConditionalGeneration
VIDEO_WIDTH = 16  # transformer: 2 heads of 8
AUDIO_WIDTH = 8  # audio branch: 2 heads of 4
OUTPUT_SAMPLE_RATE = 48_000


def build_tiny_ltx25_components(seed: int = tiny.SEED) -> dict[str, Any]:
    """Every component the ``ltx-2.5`` profile loads, with deterministic random weights."""
    tokenizer = tiny.build_tokenizer()
    return {
        "tokenizer": tokenizer,
        "text_encoder": seeded(seed, lambda: _text_encoder(len(tokenizer))),
        "connectors": seeded(seed, _connectors),
        "transformer": seeded(seed, _transformer),
        "transformer_full": seeded(seed + tiny.FULL_SEED, _transformer),
        "vae": seeded(seed, tiny._video_vae),
        "audio_vae": seeded(seed, tiny._audio_vae),
        "vocoder": seeded(seed, _vocoder),
        "latent_upsampler": seeded(seed, tiny._latent_upsampler),
        "scheduler": tiny._Scheduler(),
    }


def _text_encoder(vocab_size: int) -> Any:
    first = len(tiny._SPECIAL_TOKENS)  # the image tokens of the character vocabulary
    text = Gemma4UnifiedTextConfig(
        vocab_size=vocab_size, hidden_size=tiny.TEXT_HIDDEN, intermediate_size=64,
        num_hidden_layers=tiny.TEXT_LAYERS, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        max_position_embeddings=512, sliding_window=64,
        layer_types=["sliding_attention"] * (tiny.TEXT_LAYERS - 1) + ["full_attention"],
    )
    config = Gemma4UnifiedConfig(
        text_config=text,
        vision_config=Gemma4UnifiedVisionConfig(patch_size=4, mm_embed_dim=16, output_proj_dims=tiny.TEXT_HIDDEN),
        audio_config=Gemma4UnifiedAudioConfig(audio_embed_dim=16),
        boi_token_id=first, eoi_token_id=first + 1, image_token_id=first + 2, video_token_id=first + 2,
        boa_token_id=first, eoa_token_index=first + 1, audio_token_id=first + 2,
    )
    return _TextEncoder(config).eval()


def _connectors() -> Any:
    return LTX2TextConnectors(
        caption_channels=tiny.TEXT_HIDDEN, text_proj_in_factor=tiny.TEXT_LAYERS + 1,
        video_connector_num_attention_heads=2, video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, video_gated_attn=True,
        audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=4, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, audio_gated_attn=True,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split", per_modality_projections=True,
        video_hidden_dim=VIDEO_WIDTH, audio_hidden_dim=AUDIO_WIDTH, proj_bias=True,
    ).eval()


def _transformer() -> Any:
    audio_channels = tiny.AUDIO_LATENT_CHANNELS * tiny.MEL_BINS // 4
    return _Transformer(
        in_channels=tiny.VIDEO_LATENT_CHANNELS, out_channels=tiny.VIDEO_LATENT_CHANNELS, patch_size=1, patch_size_t=1,
        num_attention_heads=2, attention_head_dim=8, cross_attention_dim=VIDEO_WIDTH,
        gated_attn=True, cross_attn_mod=True,
        audio_in_channels=audio_channels, audio_out_channels=audio_channels, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=AUDIO_WIDTH, audio_gated_attn=True,
        audio_cross_attn_mod=True, num_layers=2, qk_norm="rms_norm_across_heads",
        caption_channels=tiny.TEXT_HIDDEN, rope_double_precision=False, rope_type="split",
        use_prompt_embeddings=False, perturbed_attn=True, ff_bias=False, use_keyframes_abs_pos_embedding=True,
    ).eval()


def _vocoder() -> Any:
    # 16 kHz from the mel frames (4 * 4 * 10 = 160 per frame), then 48 kHz: the BWE's own mel
    # frames come every 80 samples, and 4 * 6 * 10 = 240 samples at 48 kHz each.
    return LTX2VocoderWithBWE(
        in_channels=2 * tiny.MEL_BINS, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[8, 8, 20], upsample_factors=[4, 4, 10], resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]], bwe_in_channels=2 * tiny.MEL_BINS, bwe_hidden_channels=16,
        bwe_out_channels=2, bwe_upsample_kernel_sizes=[8, 12, 20], bwe_upsample_factors=[4, 6, 10],
        bwe_resnet_kernel_sizes=[3], bwe_resnet_dilations=[[1, 3, 5]], filter_length=128, hop_length=80,
        window_length=128, num_mel_channels=tiny.MEL_BINS, input_sampling_rate=tiny.AUDIO_SAMPLE_RATE,
        output_sampling_rate=OUTPUT_SAMPLE_RATE,
    ).eval()
