"""The ``tiny`` profile: the real LTX-2 pipelines on tiny random weights built in-process.

It needs no download and makes noise videos through every real code path (text encoding,
the joint audio-video transformer, both VAEs, the vocoder, conditioning, muxing), for trying
the API and for tests. It generates at 32x compression on a 160x96-class canvas and at about
3.2 fps (8k+1 frames: 17 for 5 s, 33 for 10 s, every whole second from 1 to 20 s) so that a
whole clip costs a fraction of a second on CPU; the render step then resamples to the same
24 fps output real profiles deliver. Real profiles generate at their model's native rate.

Example::

    TINY.recipe_for(VideoTask(kind="t2v", prompt="fox")).gen_frames   # 17
"""

from __future__ import annotations

from collections.abc import Mapping

from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.recipe import Profile, Quality, SecondsRange, Size

NAME = "tiny"
BUILTIN_WEIGHTS = "builtin:tiny-ltx2"
SIZES: Mapping[str, Size] = {
    "16:9": (160, 96, 256, 144),
    "9:16": (96, 160, 144, 256),
    "1:1": (96, 96, 144, 144),
}
GUIDANCE = (1.0, 3.0)
# Every whole second from 1 to 20 s, as ltx-2, generated at 3.2 fps (8k+1 frames).
SECONDS = SecondsRange(1, 20, frame_multiple=8, gen_fps=3.2, latent=(32, 8))
# The standard and quality tiers cap 16:9 and 9:16 at 12 s and 1:1 at 20 s, as ltx-2's 1080p
# tiers do (15 latent tokens a frame x 6 latent frames), so the memory refusal is testable.
MAX_TOKENS = 5 * 3 * 6
SAMPLING = Ltx2Sampling()
TINY = Profile(
    name=NAME,
    family="tiny",
    license="Apache-2.0 (random weights, for tests only)",
    description="Tiny random-weight LTX-2 built in-process: real pipelines, meaningless pixels.",
    weights=BUILTIN_WEIGHTS,
    qualities={
        "fast": Quality(2, SIZES, GUIDANCE, sampling=SAMPLING),
        "standard": Quality(3, SIZES, GUIDANCE, sampling=SAMPLING, max_tokens=MAX_TOKENS),
        "quality": Quality(4, SIZES, GUIDANCE, sampling=SAMPLING, max_tokens=MAX_TOKENS),
    },
    seconds=SECONDS,
    max_sequence_length=32,
)
