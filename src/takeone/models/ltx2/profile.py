"""The ``ltx-2`` profile (the default): every tier and kind served by Lightricks' LTX-2 19B, torch-free.

Weights (what ``takeone pull ltx-2`` downloads, about 130 GB; see :func:`sources`):

- ``Lightricks/LTX-2``, diffusers folders only: ``tokenizer``, ``text_encoder`` (Gemma 3 12B),
  ``connectors``, ``vae``, ``audio_vae``, ``vocoder``, ``scheduler``, ``latent_upsampler`` (the
  2x spatial latent upsampler) and ``transformer``, which is the full (dev) DiT: it runs
  stage 1 of the quality tier only, as component ``transformer_full``. The repo's root also
  holds single-file checkpoints (dev, distilled, fp8, LoRAs); ``pull`` skips them.
- ``rootonchair/LTX-2-19b-distilled``, folder ``transformer`` only: the step-distilled DiT in
  diffusers format (the checkpoint diffusers' own LTX-2 docs use). It runs both stages of
  the fast and standard tiers, and stage 2 of the quality tier.

Doubts, stated plainly: the folder names above follow diffusers' LTX-2 docs and loaders; the
Hub repos could not be listed from here, so ``takeone pull`` fails loudly (naming the missing
folder) if a layout differs. The distilled repo is a personal community conversion, not a
Lightricks upload: pin it (``TAKEONE_REVISIONS``) to a commit you have checked, or serve
``ltx-2.5``, whose weights all come from Lightricks' own diffusers repo. No revision is pinned
in this table: no commit hash could be verified from where it was written, and none is
invented (``takeone profiles`` says so). Lightricks' own two-stage "full" recipe runs stage 2 with the full DiT plus the
distilled LoRA (``ltx-2-19b-distilled-lora-384.safetensors``); we run the distilled DiT itself
there, which that LoRA approximates, so weights are never patched between stages. Memory
sizes in :func:`sources` are estimates (parameters x 2 bytes).

Recipes (``takeone profiles`` prints the table):

- Every case is two-stage: stage 1 at half the generation size, ``LTX2LatentUpsamplePipeline``
  doubles it, stage 2 refines 3 steps at the generation size with
  ``STAGE_2_DISTILLED_SIGMA_VALUES``, re-noised to its first value. Generation sizes are
  multiples of 64 (stage 1 must be a multiple of 32): 1280x704 for 720p and 1920x1088 for
  1080p (704x704 / 1088x1088 for 1:1), then scaled to the exact output size. Every whole
  second from 1 to 20 s at 24 fps (24 s + 1 frames, always 8k+1), within a latent-token
  budget for GPU memory (:data:`MAX_TOKENS`: 1080p 16:9 and 9:16 up to 12 s).
- ``fast``: distilled, 8 steps with ``DISTILLED_SIGMA_VALUES``, guidance 1, 720p.
- ``standard``: the same at 1080p.
- ``quality``: stage 1 with the full DiT, 40 steps (as the reference) on its fixed schedule (shifted
  as for 4,096 tokens whatever the size, stretched to 0.1: :func:`reference_sigmas`; diffusers
  would shift by the real token count), CFG + STG (block 29, LTX-2.0's recommended block) +
  modality guidance with guidance rescale 0.7 (4 transformer passes a step), audio CFG 7;
  then distilled stage 2; 1080p.
- ``guidance`` (0..1) maps onto the quality tier's CFG as ``2 + 2 * guidance``: 0.5 gives the
  reference's CFG 3.0, the value its STG and modality guidance are tuned for. The distilled
  tiers are guidance-free and ignore it; negative prompts only matter where CFG runs
  (quality), and a task without one gets the reference's default negative prompt.
- LTX-2 always generates audio; the track is kept when the task asks for audio and dropped
  otherwise. ``use_cross_timestep`` is off (LTX-2.0 behaviour).
- VAE tiling for anything larger than 720p x 121 frames (every 1080p and every 10 s clip).

Speed-ups (:data:`SPEEDUPS`, tuned for one H100; see :mod:`takeone.models.ltx2.speedups`):
regional ``torch.compile`` of the transformer block (inductor, default mode: seconds of compile
time, done by ``warmup()`` at start-up), fp8 linear layers via torchao (Hopper has twice the
fp8 matrix rate of bf16; skipped with a warning without torchao or on GPUs older than sm_89),
the fastest attention backend installed (FlashAttention 3, else cuDNN attention), VAE tiling
only where memory needs it. No feature cache by default: FirstBlockCache / TaylorSeer on the
quality tier's stage 1 trade quality for speed, and that trade has not been measured on the
real weights yet; switch ``cache`` on after an A/B check. None of these has been timed on a
GPU from this repository yet: ``benchmarks/gpu_generate.py`` owes those figures.

License: LTX-2 Community License. Organisations with $10M or more annual revenue need a paid
license from Lightricks, and it restricts use in products competing with Lightricks' own.

Example::

    recipe = ltx2_profile().recipe_for(VideoTask(kind="t2v", prompt="fox"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from takeone.models.ltx2.recipe import Ltx2Sampling, reference_sigmas
from takeone.models.recipe import Profile, Quality, SecondsRange, Size, Speedups, WeightSource

NAME = "ltx-2"
BASE_REPO = "Lightricks/LTX-2"
DISTILLED_REPO = "rootonchair/LTX-2-19b-distilled"
LICENSE = (
    "LTX-2 Community License: organisations with $10M+ annual revenue need a paid license; "
    "no use in products competing with Lightricks"
)
# diffusers.pipelines.ltx2.utils' values (a test checks they match); copied so that the API
# process can read recipes without importing diffusers.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
STAGE_2_SIGMAS = (0.909375, 0.725, 0.421875)
# Every whole second from 1 to 20 s (Lightricks' reference makes up to 20 s at 24 fps): 24 s + 1
# frames, which is always 8k+1.
SECONDS = SecondsRange(1, 20, frame_multiple=8, latent=(32, 8))
# GPU memory: a clip may have at most the latent tokens of 1080p 16:9 for 12 s (2,040 tokens
# per latent frame x 37 = 75,480), the longest clip the activation reserve (ACTIVATION_GIB)
# is planned for; 720p reaches 20 s within it, 1080p 1:1 20 s, 1080p 16:9 and 9:16 12 s.
# An estimate (tokens scale activations linearly with flash attention), not measured on a GPU.
MAX_TOKENS = 60 * 34 * 37
SIZES_720P: Mapping[str, Size] = {
    "16:9": (1280, 704, 1280, 720),
    "9:16": (704, 1280, 720, 1280),
    "1:1": (704, 704, 720, 720),
}
SIZES_1080P: Mapping[str, Size] = {
    "16:9": (1920, 1088, 1920, 1080),
    "9:16": (1088, 1920, 1080, 1920),
    "1:1": (1088, 1088, 1080, 1080),
}
# CFG for the full model: the reference's 3.0 at guidance 0.5, within 2..4, because its STG
# and modality guidance are tuned for CFG 3 (a CFG of 6 on top of them oversaturates).
QUALITY_GUIDANCE = (2.0, 4.0)
# Lightricks' reference default negative prompt (ltx-pipelines), used when a task gives none.
NEGATIVE_PROMPT = (
    "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)
TILE_ABOVE = 1280 * 704 * 121
SPEEDUPS = Speedups(compile="regional", fp8=True, attention_backend="auto", vae_tiling="auto", cache=None)
ACTIVATION_GIB = 12.0

DISTILLED = Ltx2Sampling(
    sigmas=DISTILLED_SIGMAS,
    use_cross_timestep=False,
    two_stage=True,
    stage2_steps=len(STAGE_2_SIGMAS),
    stage2_sigmas=STAGE_2_SIGMAS,
    stage2_noise_scale=STAGE_2_SIGMAS[0],
)
FULL_STEPS = 40  # Lightricks' reference (ltx-pipelines' two-stage default)
FULL = Ltx2Sampling(
    sigmas=reference_sigmas(FULL_STEPS),
    audio_guidance_scale=7.0,
    guidance_rescale=0.7,
    stg_scale=1.0,
    stg_blocks=(29,),
    modality_scale=3.0,
    use_cross_timestep=False,
    two_stage=True,
    stage1_transformer="transformer_full",
    stage2_steps=len(STAGE_2_SIGMAS),
    stage2_sigmas=STAGE_2_SIGMAS,
    stage2_noise_scale=STAGE_2_SIGMAS[0],
)


def sources() -> tuple[WeightSource, ...]:
    """Every component the profile loads, with its estimated bf16 size in GiB."""
    base = [
        ("tokenizer", 0.0),
        ("text_encoder", 22.7),
        ("connectors", 2.8),
        ("vae", 1.5),
        ("audio_vae", 0.2),
        ("vocoder", 0.2),
        ("scheduler", 0.0),
        ("latent_upsampler", 1.0),
    ]
    return (
        *(WeightSource(name, BASE_REPO, name, gib) for name, gib in base),
        WeightSource("transformer", DISTILLED_REPO, "transformer", 35.4),
        WeightSource("transformer_full", BASE_REPO, "transformer", 35.4),
    )


# --- ltx-2.5 ---------------------------------------------------------------------------

NAME_25 = "ltx-2.5"
REPO_25 = "Lightricks/LTX-2.5-Diffusers"
LICENSE_25 = LICENSE.replace("LTX-2 Community", "LTX-2.x Community")
# The reference's 2.3+ full-model recipe: STG on block 28 (2.0: 29), cross-timestep
# modulation on; the distilled stage 1 samples with the ancestral Euler step since 2.5.
DISTILLED_25 = dataclasses.replace(DISTILLED, use_cross_timestep=True, stage1_sampler="ancestral")
# ltx-2.5 keeps the 30 full-model steps its recipe table was checked against; only LTX-2's
# reference was read for 40 (FULL_STEPS).
FULL_STEPS_25 = 30
FULL_25 = dataclasses.replace(FULL, sigmas=reference_sigmas(FULL_STEPS_25), stg_blocks=(28,), use_cross_timestep=True)


def sources_25() -> tuple[WeightSource, ...]:
    """Every folder of ``Lightricks/LTX-2.5-Diffusers`` the profile loads (estimated bf16 GiB),
    plus its ``model_index.json``, which names each component's class. Skipped: the stage-2
    LoRA at the root (the distilled DiT runs stage 2 itself), the duration head (clip lengths
    are the task's), the diffusion decoder (needs NATTEN kernels from the Hub; the
    convolutional ``vae/`` decodes instead)."""
    folders = [
        ("tokenizer", "tokenizer", 0.0),
        ("text_encoder", "text_encoder", 22.4),  # Gemma 4 12B with LTX's projection
        ("connectors", "connectors", 3.0),
        ("vae", "vae", 1.5),
        ("audio_vae", "audio_vae", 0.2),
        ("vocoder", "vocoder", 0.3),  # with bandwidth extension to 48 kHz
        ("scheduler", "scheduler", 0.0),
        ("latent_upsampler", "latent_upsampler", 1.0),
        ("transformer", "transformer", 41.0),  # distilled, about 22B parameters
        ("transformer_full", "transformer_full", 41.0),
    ]
    return (
        *(WeightSource(name, REPO_25, folder, gib) for name, folder, gib in folders),
        WeightSource("model_index", REPO_25, None, 0.0, "model_index.json"),
    )


def ltx25_profile() -> Profile:
    """Build the ``ltx-2.5`` profile: every weight from Lightricks' own diffusers repo (gated)."""
    steps = len(DISTILLED_SIGMAS)
    full = f"{REPO_25} (full + distilled)"
    return Profile(
        name=NAME_25,
        family="ltx2",
        license=LICENSE_25,
        description="LTX-2.5 22B (Gemma 4, 48 kHz audio): distilled two-stage (fast, standard), "
        "full + distilled (quality). Gated repo: needs HF_TOKEN.",
        weights=REPO_25,
        qualities={
            "fast": Quality(steps, SIZES_720P, sampling=DISTILLED_25, weights=REPO_25, max_tokens=MAX_TOKENS),
            "standard": Quality(steps, SIZES_1080P, sampling=DISTILLED_25, weights=REPO_25, max_tokens=MAX_TOKENS),
            "quality": Quality(FULL_STEPS_25, SIZES_1080P, QUALITY_GUIDANCE, sampling=FULL_25, weights=full,
                               max_tokens=MAX_TOKENS),
        },
        seconds=SECONDS,
        negative_prompt=NEGATIVE_PROMPT,
        sources=sources_25(),
        offload="auto",
        activation_gib=ACTIVATION_GIB,
        vae_tiling_above=TILE_ABOVE,
        speedups=SPEEDUPS,
    )


def ltx2_profile() -> Profile:
    """Build the ``ltx-2`` profile."""
    distilled = f"{DISTILLED_REPO}"
    full = f"{BASE_REPO} (full) + {DISTILLED_REPO}"
    steps = len(DISTILLED_SIGMAS)
    return Profile(
        name=NAME,
        family="ltx2",
        license=LICENSE,
        description="LTX-2 19B: distilled two-stage (fast, standard), full + distilled (quality), with audio.",
        weights=BASE_REPO,
        qualities={
            "fast": Quality(steps, SIZES_720P, sampling=DISTILLED, weights=distilled, max_tokens=MAX_TOKENS),
            "standard": Quality(steps, SIZES_1080P, sampling=DISTILLED, weights=distilled, max_tokens=MAX_TOKENS),
            "quality": Quality(FULL_STEPS, SIZES_1080P, QUALITY_GUIDANCE, sampling=FULL, weights=full,
                               max_tokens=MAX_TOKENS),
        },
        seconds=SECONDS,
        negative_prompt=NEGATIVE_PROMPT,
        sources=sources(),
        offload="auto",
        activation_gib=ACTIVATION_GIB,
        vae_tiling_above=TILE_ABOVE,
        speedups=SPEEDUPS,
    )
