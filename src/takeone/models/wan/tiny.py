"""Tiny random-weight Wan checkpoints, written in the real repos' layouts, for offline tests.

Wan weights cannot be downloaded here, yet the ``wan-2.2`` profile must be tested through its
real loading code (``from_pretrained`` on three repos, shared components, lazy loading) and
its real pipelines. :func:`write_tiny_wan_repos` writes three diffusers folders shaped like
``Wan-AI/Wan2.2-I2V-A14B-Diffusers`` (two experts, ``boundary_ratio`` 0.9, no image encoder),
``Wan-AI/Wan2.2-T2V-A14B-Diffusers`` (two experts, 0.875) and
``Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers`` (one expert with image conditioning, a CLIP vision
encoder and its image processor), either as a Hugging Face cache (``models--org--name/
snapshots/<rev>``, ``refs/main``) or as plain ``<org>/<name>`` folders.

What differs from the real models, and why:

- Random weights, built under a fixed seed: the same process always writes the same bytes.
  The text encoder and VAE are built with the same seed in every repo, as the real repos
  ship the same UMT5-XXL and Wan 2.1 VAE, so the loader's sharing is faithful.
- A unigram ``T5Tokenizer`` over single characters, built in memory (the real one is
  UMT5's 256k-piece SentencePiece model), and a 2-layer ``UMT5EncoderModel`` with
  ``d_model=32`` matching the transformers' ``text_dim=32``.
- A VAE with Wan's real 8x spatial and 4x temporal compression but 3 base channels, and
  2-layer transformers with patch (1, 2, 2), so a tiny clip is a few dozen latent tokens.
- A CLIP vision tower of 8x8 pixels in 4x4 patches: 5 tokens per image, 10 for the pair of
  frames FLF2V encodes (its transformer's ``pos_embed_seq_len``).

Example::

    root = write_tiny_wan_repos(tmp_path / "hub")           # a Hugging Face cache folder
    model = load_video_model("wan-2.2", "cpu", weights=root)
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    T5Tokenizer,
    UMT5Config,
    UMT5EncoderModel,
)

from takeone.models.family_helpers import seeded
from takeone.models.wan.profile import BOUNDARY_RATIOS, REPOS

# diffusers' model classes are untyped; constructing them through ``Any`` keeps mypy strict.
_Scheduler: Any = UniPCMultistepScheduler
_I2VPipeline: Any = WanImageToVideoPipeline
_T2VPipeline: Any = WanPipeline
_Transformer: Any = WanTransformer3DModel
_Vae: Any = AutoencoderKLWan

SEED = 0
SHARED_FOLDERS = ("tokenizer", "text_encoder", "vae")
TEXT_DIM = 32
LATENT_CHANNELS = 16  # Wan 2.1 VAE's z_dim; its latents_mean/std tables have 16 entries
I2V_IN_CHANNELS = 2 * LATENT_CHANNELS + 4  # noise + first-frame latents + 4-channel frame mask
CLIP_IMAGE_SIZE = 8
CLIP_PATCH = 4
CLIP_HIDDEN = 8
FLOW_SHIFT = 5.0
Layout = Literal["cache", "folders"]


def build_tiny_wan(pipeline: str, seed: int = SEED) -> Any:
    """The tiny pipeline for ``pipeline`` ("i2v", "t2v" or "condition"), like its real repo."""
    builders: Mapping[str, Callable[[int], Any]] = {
        "i2v": _i2v,
        "t2v": _t2v,
        "condition": _flf2v,
    }
    return builders[pipeline](seed)


def write_tiny_wan_repos(root: Path, layout: Layout = "cache", seed: int = SEED, complete: bool = True) -> Path:
    """Save the three tiny checkpoints under ``root`` in ``layout`` and return ``root``.

    ``cache`` is what ``huggingface_hub`` writes (``models--Wan-AI--.../snapshots/<rev>`` plus
    ``refs/main``); ``folders`` is ``root/Wan-AI/<name>``, as ``hf download --local-dir`` writes.
    ``complete=False`` leaves out the T2V and FLF2V copies of the shared parts, as
    ``takeone pull wan-2.2`` does.
    """
    for pipeline, repo in REPOS.items():
        target = _cache_snapshot(root, repo) if layout == "cache" else root / repo
        build_tiny_wan(pipeline, seed).save_pretrained(target)
        if not complete and pipeline != "i2v":
            for folder in SHARED_FOLDERS:
                shutil.rmtree(target / folder)
    return root


def build_tokenizer() -> T5Tokenizer:
    """A unigram tokenizer with one piece per printable ASCII character; anything else is ``<unk>``."""
    pieces = ["\u2581"] + [chr(code) for code in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(piece, -1.0) for piece in pieces]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _cache_snapshot(root: Path, repo: str) -> Path:
    """Create ``refs/main`` for ``repo`` in a cache at ``root`` and return its snapshot folder."""
    folder = root / ("models--" + repo.replace("/", "--"))
    revision = hashlib.sha1(repo.encode()).hexdigest()  # any 40-hex commit id will do
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return folder / "snapshots" / revision


def _shared(seed: int) -> dict[str, Any]:
    """Tokenizer, text encoder, VAE and scheduler: identical in every repo, like the real ones."""
    tokenizer = build_tokenizer()
    return {
        "tokenizer": tokenizer,
        "text_encoder": seeded(seed, lambda: _text_encoder(len(tokenizer))),
        "vae": seeded(seed, _vae),
        "scheduler": _Scheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=FLOW_SHIFT
        ),
    }


def _i2v(seed: int) -> Any:
    return _I2VPipeline(
        **_shared(seed),
        transformer=seeded(seed, lambda: _transformer(I2V_IN_CHANNELS)),
        transformer_2=seeded(seed + 1, lambda: _transformer(I2V_IN_CHANNELS)),
        boundary_ratio=BOUNDARY_RATIOS["i2v"],
    )


def _t2v(seed: int) -> Any:
    return _T2VPipeline(
        **_shared(seed),
        transformer=seeded(seed + 2, lambda: _transformer(LATENT_CHANNELS)),
        transformer_2=seeded(seed + 3, lambda: _transformer(LATENT_CHANNELS)),
        boundary_ratio=BOUNDARY_RATIOS["t2v"],
    )


def _flf2v(seed: int) -> Any:
    tokens_per_image = (CLIP_IMAGE_SIZE // CLIP_PATCH) ** 2 + 1  # patches + class token
    image_conditioning = {
        "image_dim": CLIP_HIDDEN,
        "added_kv_proj_dim": 24,  # the attention width (2 heads x 12), as in the real model
        "pos_embed_seq_len": 2 * tokens_per_image,  # first and last frame
    }
    return _I2VPipeline(
        **_shared(seed),
        transformer=seeded(seed + 4, lambda: _transformer(I2V_IN_CHANNELS, **image_conditioning)),
        image_encoder=seeded(seed, _image_encoder),
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": CLIP_IMAGE_SIZE},
            crop_size={"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE},
        ),
    )


def _text_encoder(vocab_size: int) -> Any:
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    model: Any = UMT5EncoderModel(config)
    return model.eval()


def _vae() -> Any:
    return _Vae(
        base_dim=3,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


def _transformer(in_channels: int, **image_conditioning: Any) -> Any:
    return _Transformer(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        **image_conditioning,
    ).eval()


def _image_encoder() -> Any:
    config = CLIPVisionConfig(
        hidden_size=CLIP_HIDDEN,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=CLIP_IMAGE_SIZE,
        patch_size=CLIP_PATCH,
        projection_dim=CLIP_HIDDEN,
    )
    model: Any = CLIPVisionModel(config)
    return model.eval()
