"""The dialect-neutral description of one video: what every API dialect's body becomes.

A dialect (one per API convention a client may speak) validates its HTTP body at the edge, stores the
input images as blobs, and maps the rest onto one frozen :class:`VideoTask`. Profiles,
recipes, prices and warm-up speak only of tasks and tiers; no dialect's vocabulary reaches
past this point. Field names here are neutral: when a profile cannot serve a task it raises
:class:`~takeone.core.errors.InvalidRequest` naming one of :data:`TASK_FIELDS`, and the
dialect renames it to its own field before answering.

Example::

    task = VideoTask(kind="i2v", tier="standard", seconds=5, first_frame="inputs/req_1/first.png")
    task.inputs()   # {"first_frame": "inputs/req_1/first.png"}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from takeone.core.errors import InvalidRequest
from takeone.core.loras import LoraUse, parse_loras

TaskKind = Literal["t2v", "i2v", "flf2v"]
Tier = Literal["fast", "standard", "quality"]
KINDS: tuple[TaskKind, ...] = get_args(TaskKind)
TIERS: tuple[Tier, ...] = get_args(Tier)
INPUT_ROLES = ("first_frame", "last_frame")
TASK_FIELDS = ("kind", "tier", "seconds", "aspect_ratio", "size", "fps", "audio", "seed",
               "prompt", "negative_prompt", "guidance", "first_frame", "last_frame", "shots",
               "loras")
MAX_SHOTS = 5
SHOT_FRAME = "shot:previous-last-frame"
"""The first frame of every shot after the first, until the worker has rendered the shot before."""


@dataclass(frozen=True)
class Shot:
    """One shot of a multi-shot video: its own prompt and length in seconds."""

    prompt: str
    seconds: int


@dataclass(frozen=True)
class VideoTask:
    """Everything a worker needs to make one video, in no dialect's words.

    - ``kind``: ``t2v`` (text only), ``i2v`` (first frame given) or ``flf2v`` (first and
      last frame given).
    - ``tier``: ``fast``, ``standard`` or ``quality``; a profile maps each onto a recipe.
    - ``seconds``, ``fps``: the delivered clip; a profile lists the durations it serves.
      ``fps`` None is the profile's own rate (24 for LTX-2, 16 for Wan A14B, never repeated frames).
    - ``aspect_ratio`` or ``size`` (``"WIDTHxHEIGHT"``, the exact output size): one of them.
    - ``guidance``: 0..1, where in the tier's guidance range to sample (0.5 is the middle).
    - ``first_frame`` / ``last_frame``: blob keys of the input images (PNG).
    - ``shots``: a multi-shot video (at most :data:`MAX_SHOTS`): the shots are rendered in
      order as one clip, each from its own prompt and conditioned on the previous shot's last
      frame; ``seconds`` is their sum. Empty: one shot of ``prompt``.
    - ``loras``: the library's LoRAs to run with and their scales (empty: the base model).
    """

    kind: TaskKind
    tier: Tier = "standard"
    seconds: int = 5
    aspect_ratio: str | None = "16:9"
    size: str | None = None
    fps: int | None = None
    audio: bool = False
    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    guidance: float = 0.5
    first_frame: str | None = None
    last_frame: str | None = None
    shots: tuple[Shot, ...] = ()
    loras: tuple[LoraUse, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, KINDS)
        _check_choice("tier", self.tier, TIERS)
        if not (isinstance(self.guidance, (int, float)) and math.isfinite(self.guidance)
                and 0.0 <= self.guidance <= 1.0):
            raise InvalidRequest("guidance", self.guidance, "must be a number from 0 to 1")
        if (self.aspect_ratio is None) == (self.size is None):
            raise InvalidRequest("size", self.size, "give exactly one of aspect_ratio and size")
        self._check_frames()
        self._check_shots()

    def _check_shots(self) -> None:
        if not self.shots:
            return
        if len(self.shots) > MAX_SHOTS or self.kind == "flf2v":
            raise InvalidRequest("shots", len(self.shots), f"must be 1 to {MAX_SHOTS} shots, without a last frame")
        if any(shot.seconds < 1 for shot in self.shots):
            raise InvalidRequest("shots", [s.seconds for s in self.shots], "each shot must last 1 second or more")
        total = sum(shot.seconds for shot in self.shots)
        if total != self.seconds:
            raise InvalidRequest("seconds", self.seconds, f"must be the shots' total, {total}")

    def shot_tasks(self) -> tuple[VideoTask, ...]:
        """One single-shot task per shot, in order (just this task when it has no shots). The
        shots after the first are image to video from :data:`SHOT_FRAME`, which the worker
        replaces with the previous shot's last frame."""
        if not self.shots:
            return (self,)
        return tuple(
            dataclasses.replace(self, shots=(), prompt=shot.prompt, seconds=shot.seconds,
                                kind=self.kind if i == 0 else "i2v",
                                first_frame=self.first_frame if i == 0 else SHOT_FRAME)
            for i, shot in enumerate(self.shots))

    def _check_frames(self) -> None:
        wants_first = self.kind in ("i2v", "flf2v")
        if wants_first and self.first_frame is None:
            raise InvalidRequest("first_frame", None, f"is required for {self.kind}")
        if not wants_first and self.first_frame is not None:
            raise InvalidRequest("first_frame", "<image>", "is not taken by text-to-video")
        if self.kind == "flf2v" and self.last_frame is None:
            raise InvalidRequest("last_frame", None, "is required for flf2v")
        if self.kind != "flf2v" and self.last_frame is not None:
            raise InvalidRequest("last_frame", "<image>", f"is not taken by {self.kind}")

    def inputs(self) -> dict[str, str]:
        """The input images' blob keys by role (``first_frame``, ``last_frame``)."""
        keys = {"first_frame": self.first_frame, "last_frame": self.last_frame}
        return {role: key for role, key in keys.items() if key is not None}

    def with_inputs(self, inputs: dict[str, str]) -> VideoTask:
        """The same task with the input references of ``inputs`` (role -> key) replaced."""
        unknown = set(inputs) - set(INPUT_ROLES)
        if unknown:
            raise ValueError(f"unknown input roles: {sorted(unknown)}")
        return dataclasses.replace(self, first_frame=inputs.get("first_frame", self.first_frame),
                                   last_frame=inputs.get("last_frame", self.last_frame))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoTask:
        shots = tuple(Shot(**shot) for shot in data.get("shots", ()))
        loras = data.get("loras") or ()
        return cls(**{**data, "shots": shots, "loras": parse_loras(list(loras)) if loras else ()})


def kind_for(first_frame: object | None, last_frame: object | None) -> TaskKind:
    """The task kind implied by which input frames are present."""
    if last_frame is not None:
        return "flf2v"
    return "i2v" if first_frame is not None else "t2v"


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidRequest(name, value, f"must be one of {', '.join(allowed)}")
