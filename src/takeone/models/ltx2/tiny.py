"""Tiny random-weight LTX-2 components, built in-process for tests and CPU-only machines.

Weights cannot be downloaded here, yet the worker must run the real LTX-2 pipelines end to end
(text encoding, connectors, joint audio-video transformer, video VAE, audio VAE, vocoder,
image conditioning, muxing). This module builds every component from a config with a fixed
seed, so the same process always gets the same weights and the same videos per seed.

What the tiny profile does differently from a real profile, and why:

- Random weights: the pixels and the sound are noise-like; only shapes, timing and the code
  path are real.
- Character tokenizer and a 2-layer Gemma 3 text encoder with hidden size 32 (the connectors
  use 4 heads of 8), prompts truncated to 32 tokens instead of 1024.
- A video VAE with LTX-2's real 32x spatial and 8x temporal compression (patch 4 and four
  down-sampling blocks) but 8 channels, so a 160x96 clip of 33 frames is only 75 latent
  tokens. Attention cost is quadratic in tokens; with diffusers' 2x test VAE a 10 s clip
  takes minutes on 2 cores, with this one a fraction of a second.
- A low generation frame rate: 17 frames for 5 s and 33 for 10 s (about 3.4 fps, passed to
  the pipeline as ``frame_rate`` so the audio still spans the whole clip). The render step
  then picks the nearest generated frame for each of the 121 or 241 output frames at 24 fps
  and scales to the exact output size. Real profiles generate at 24 fps directly.
- A 16 kHz audio VAE (8 mel bins) and a vocoder upsampling 160x, so the audio track has the
  real duration at a low sample rate.

For the real profiles' loading code, :func:`write_tiny_checkpoints` saves these components
(plus a tiny latent upsampler and a second "full" transformer) with ``save_pretrained`` into
each folder a profile's :class:`~takeone.models.recipe.WeightSource` names, either as a
Hugging Face cache (``models--<org>--<name>/snapshots/<rev>/...`` with ``refs/main``) or as
``<root>/<org>/<name>/...`` folders, so a test loads them offline exactly as a server would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    GemmaTokenizer,
    SiglipVisionConfig,
)

from takeone.models.family_helpers import seeded

if TYPE_CHECKING:
    from takeone.models.recipe import Profile

# diffusers' model classes are untyped; constructing them through ``Any`` keeps mypy strict.
_Scheduler: Any = FlowMatchEulerDiscreteScheduler
_Transformer: Any = LTX2VideoTransformer3DModel
_VideoVae: Any = AutoencoderKLLTX2Video
_AudioVae: Any = AutoencoderKLLTX2Audio

SEED = 0
FULL_SEED = 1  # the "full" transformer differs from the distilled one, as real ones do
TINY_REVISION = "0" * 40
TEXT_HIDDEN = 32
TEXT_LAYERS = 2
VIDEO_LATENT_CHANNELS = 8
AUDIO_LATENT_CHANNELS = 2
MEL_BINS = 8
AUDIO_SAMPLE_RATE = 16_000
MEL_HOP = 160
_SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
_IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")



def build_tiny_components(seed: int = SEED) -> dict[str, Any]:
    """Every component ``LTX2Pipeline`` needs, with deterministic random weights.

    Each module is built under its own fork of the global torch RNG seeded with ``seed``, so
    building does not disturb the caller's random state and the weights never depend on what
    ran before.
    """
    tokenizer = build_tokenizer()
    return {
        "tokenizer": tokenizer,
        "text_encoder": seeded(seed, lambda: _text_encoder(len(tokenizer))),
        "connectors": seeded(seed, _connectors),
        "transformer": seeded(seed, _transformer),
        "vae": seeded(seed, _video_vae),
        "audio_vae": seeded(seed, _audio_vae),
        "vocoder": seeded(seed, _vocoder),
        "scheduler": _Scheduler(),
    }


def build_tiny_ltx2_components(seed: int = SEED) -> dict[str, Any]:
    """:func:`build_tiny_components` plus what two-stage and guided recipes need: a latent
    upsampler and a second transformer standing in for the full (non-distilled) DiT."""
    return {
        **build_tiny_components(seed),
        "transformer_full": seeded(seed + FULL_SEED, _transformer),
        "latent_upsampler": seeded(seed, _latent_upsampler),
        # Resolution-dependent shifting as in LTX-2's scheduler config, so tests see that
        # distilled sigmas are used unshifted and the full model's default schedule is not.
        "scheduler": _Scheduler(
            use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, shift_terminal=0.1
        ),
    }


def write_tiny_checkpoints(profile: Profile, root: Path, layout: str = "cache") -> None:
    """Save tiny components into every folder ``profile.sources`` names, under ``root``.

    ``layout="cache"`` writes a Hugging Face cache (what ``HF_HOME/hub`` holds);
    ``layout="local"`` writes ``root/<org>/<name>`` folders like ``hf download --local-dir``.
    """
    components = _tiny_components_for(profile)
    for source in profile.sources:
        target = _repo_folder(root, source.repo, layout) / source.path
        if source.filename == "model_index.json":
            _model_index(components, target.parent)
        else:
            components[source.component].save_pretrained(target)


def _tiny_components_for(profile: Profile) -> dict[str, Any]:
    """The 2.5 architecture for ``ltx-2.5`` (scaled copies keep the name), else 2.0's."""
    if profile.name.startswith("ltx-2.5"):
        from takeone.models.ltx2.tiny25 import build_tiny_ltx25_components  # it builds on this module

        return build_tiny_ltx25_components()
    return build_tiny_ltx2_components()


def _model_index(components: dict[str, Any], folder: Path) -> None:
    """The repo's ``model_index.json`` as diffusers writes it: each part's library and class."""
    from diffusers import LTX2Pipeline

    from takeone.models.family_helpers import accepted

    pipeline_class: Any = LTX2Pipeline
    pipeline_class(**accepted(pipeline_class, components)).save_config(folder)


def _repo_folder(root: Path, repo: str, layout: str) -> Path:
    if layout == "local":
        return root / repo
    if layout != "cache":
        raise ValueError(f"layout must be 'cache' or 'local', not {layout!r}")
    storage = root / f"models--{repo.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(TINY_REVISION)
    return storage / "snapshots" / TINY_REVISION


def build_tokenizer() -> GemmaTokenizer:
    """A Gemma BPE tokenizer with one token per printable ASCII character and byte fallback.

    ``merges=[]`` makes every character its own token; the 256 byte tokens cover any other
    UTF-8 text, so no prompt is ever unknown.
    """
    characters = ["\u2581"] + [chr(code) for code in range(33, 127)]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    tokens = [*_SPECIAL_TOKENS, *_IMAGE_TOKENS, *characters, *byte_tokens]
    vocab = {token: index for index, token in enumerate(tokens)}
    return GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=True)


def _text_encoder(vocab_size: int) -> Any:
    first_image_token = len(_SPECIAL_TOKENS)
    text = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=512,
        sliding_window=64,
    )
    # Gemma 3 always carries a SigLIP tower; text-only prompts never run it, so it is minimal.
    vision = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        boi_token_index=first_image_token,
        eoi_token_index=first_image_token + 1,
        image_token_index=first_image_token + 2,
    )
    model: Any = Gemma3ForConditionalGeneration(config)
    return model.eval()


def _connectors() -> Any:
    # 4 heads of 8 = 32 wide, matching the text hidden size; other widths fail on shapes.
    return LTX2TextConnectors(
        caption_channels=TEXT_HIDDEN,
        text_proj_in_factor=TEXT_LAYERS + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    ).eval()


def _transformer() -> Any:
    # 2 layers: STG's default block [28] does not exist here, so tiny recipes keep STG off.
    return _Transformer(
        in_channels=VIDEO_LATENT_CHANNELS,
        out_channels=VIDEO_LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
        audio_out_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=TEXT_HIDDEN,
        rope_double_precision=False,
        rope_type="split",
    ).eval()


def _latent_upsampler() -> Any:
    # 32 channels: the upsampler's group norms use 32 groups.
    return LTX2LatentUpsamplerModel(
        in_channels=VIDEO_LATENT_CHANNELS, mid_channels=32, num_blocks_per_stage=1
    ).eval()


def _video_vae(timestep_conditioning: bool = False) -> Any:
    """LTX-2's block layout (32x space, 8x time) with 8-16-32 channels and one layer per block."""
    vae = _VideoVae(
        in_channels=3,
        out_channels=3,
        latent_channels=VIDEO_LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=timestep_conditioning,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae.eval()


def _audio_vae() -> Any:
    # Three levels (1, 2, 4) give the 4x time and mel compression the pipeline assumes.
    return _AudioVae(
        base_channels=4,
        output_channels=2,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=AUDIO_LATENT_CHANNELS,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=AUDIO_SAMPLE_RATE,
        mel_hop_length=MEL_HOP,
        is_causal=True,
        mel_bins=MEL_BINS,
    ).eval()


def _vocoder() -> Any:
    # 4 * 4 * 10 = 160 samples per mel frame (the hop), so the output rate is the VAE's 16 kHz.
    return LTX2Vocoder(
        in_channels=2 * MEL_BINS,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[8, 8, 20],
        upsample_factors=[4, 4, 10],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=AUDIO_SAMPLE_RATE,
    ).eval()
