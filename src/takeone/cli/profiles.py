"""``takeone profiles`` (what each profile serves, and how) and ``takeone pull`` (its weights).

Both are torch-free: they read recipes from :mod:`takeone.models.registry` and weights from
:mod:`takeone.models.weights`, so they answer in a fraction of a second on any machine.

    takeone profiles              # one short line per profile: default? weights here?
    takeone profiles ltx-2        # its recipe table (tiers, cases, sizes, steps), license, pins
    takeone profiles --all        # every profile's table
    takeone profiles --json       # every recipe, one row per case x aspect ratio x duration
    takeone pull ltx-2            # download exactly the files ltx-2 loads
    takeone pull ltx-2 --weights /data/weights   # into /data/weights/<org>/<name> instead
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from takeone.cli.arguments import add_revision_arg
from takeone.core.errors import InvalidRequest

if TYPE_CHECKING:  # the recipes load when a command runs, not for `takeone --help`
    from takeone.models.recipe import Profile, Recipe

DEFAULT_PROFILE = "ltx-2"
SUMMARY_WIDTH = 100
# (case name, first frame, last frame, audio)
CASES: tuple[tuple[str, bool, bool, bool], ...] = (
    ("t2v", False, False, False),
    ("t2v+audio", False, False, True),
    ("i2v", True, False, False),
    ("i2v+audio", True, False, True),
    ("flf2v", True, True, False),
)
COLUMNS = ("tier", "case", "pipeline", "weights", "steps", "generation", "output", "fps",
           "seconds", "frames", "audio")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``profiles`` and ``pull`` to the ``takeone`` command's subparsers."""
    profiles = sub.add_parser("profiles", help="list model profiles and their recipe tables")
    profiles.add_argument("names", nargs="*", metavar="PROFILE", help="show these profiles' recipe tables")
    profiles.add_argument("--all", action="store_true", help="every profile's recipe table")
    profiles.add_argument("--json", action="store_true", help="every recipe as JSON")
    profiles.add_argument("--weights", type=Path, metavar="DIR",
                          help="look for weights under DIR too (default: $TAKEONE_WEIGHTS)")
    add_revision_arg(profiles)
    profiles.set_defaults(run=run_profiles)
    pull = sub.add_parser("pull", help="download exactly the weights a profile loads")
    pull.add_argument("profile", nargs="?", default=DEFAULT_PROFILE, help=f"default: {DEFAULT_PROFILE}")
    pull.add_argument("--weights", type=Path, metavar="DIR",
                      help="download into DIR/<org>/<name> instead of the Hugging Face cache")
    add_revision_arg(pull)
    pull.set_defaults(run=run_pull)


def run_profiles(args: argparse.Namespace) -> int:
    from takeone.models.registry import PROFILES, get_profile

    if args.json:
        print(json.dumps([profile_json(profile) for profile in PROFILES.values()], indent=2))
        return 0
    from takeone.cli.arguments import weights_dir

    root = weights_dir(args)
    if args.all or args.names:
        try:
            chosen = list(PROFILES.values()) if args.all else [get_profile(name) for name in args.names]
        except ValueError as exc:
            print(f"takeone: {exc}", file=sys.stderr)
            return 2
        print("\n\n".join(profile_table(profile, root) for profile in chosen))
        return 0
    print("\n".join(summary_lines(root)))
    return 0


def summary_lines(root: Path | None, width: int = SUMMARY_WIDTH) -> list[str]:
    """One line per profile (``*`` marks the default) with whether its weights are here.

    Example::

        summary_lines(None)[1]   # '* ltx-2    missing   LTX-2 19B: distilled two-stage (fast, ...'
    """
    from takeone.models.registry import PROFILES

    name_width = max(len(name) for name in PROFILES)
    rows = [f"  {'PROFILE'.ljust(name_width)}  {'WEIGHTS'.ljust(8)}  DESCRIPTION"]
    for name, profile in PROFILES.items():
        mark = "*" if name == DEFAULT_PROFILE else " "
        line = f"{mark} {name.ljust(name_width)}  {weights_state(profile, root).ljust(8)}  "
        rows += textwrap.wrap(profile.description, width, initial_indent=line,
                              subsequent_indent=" " * len(line), break_on_hyphens=False)
    rows += ["", f"* the default profile (serve, worker and generate without --profile: {DEFAULT_PROFILE})",
             "weights: built in, present (here or in the Hugging Face cache) or missing:",
             "  download missing ones with `takeone pull PROFILE`",
             "details: `takeone profiles PROFILE` (recipe table, license, pins), --all, --json"]
    return rows


def weights_state(profile: Profile, root: Path | None) -> str:
    """``built in``, ``present`` or ``missing``: whether ``profile`` could load on this machine."""
    from takeone.models.weights import check, needs

    if not needs(profile):
        return "built in"
    return "missing" if check(profile, root) else "present"



def run_pull(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from takeone.cli.arguments import apply_revisions
    from takeone.models.registry import get_profile
    from takeone.models.weights import needs, pull, revisions_file

    apply_revisions(args)
    try:
        profile = get_profile(args.profile)
    except ValueError as exc:
        print(f"takeone: {exc}", file=sys.stderr)
        return 2
    wanted = needs(profile)
    if not wanted:
        print(f"profile {profile.name!r} needs no download ({profile.weights})")
        return 0
    for need in wanted:
        print(f"pulling {need.describe()}")
    try:
        missing = pull(profile, args.weights)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        # Offline, no network, a gated repo without HF_TOKEN, a full disk: say which, briefly.
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"takeone: download failed: {type(exc).__name__}: {first_line}\n"
              "(check the network, HF_HUB_OFFLINE, and HF_TOKEN for gated repos; rerun to resume)",
              file=sys.stderr)
        return 1
    if missing:
        print("still missing after the download (the repo layout may differ):\n  " + "\n  ".join(missing),
              file=sys.stderr)
        return 1
    print(f"profile {profile.name!r}: all weights present; commits recorded in {revisions_file(args.weights)}")
    return 0


def recipe_rows(profile: Profile) -> Iterator[dict[str, Any]]:
    """One row per servable (tier, case, aspect ratio, duration); cases the profile refuses
    (a silent profile asked for audio) are left out."""
    from takeone.core.task import VideoTask, kind_for
    from takeone.models.recipe import ASPECT_RATIOS

    for tier in profile.qualities:
        for case, image, tail, audio in CASES:
            for aspect in ASPECT_RATIOS:
                for seconds in profile.durations():
                    first, last = ("first.png" if image else None), ("last.png" if tail else None)
                    task = VideoTask(kind=kind_for(first, last), tier=tier, aspect_ratio=aspect,
                                     seconds=seconds, audio=audio, first_frame=first, last_frame=last)
                    try:
                        recipe = profile.recipe_for(task)
                    except InvalidRequest:
                        continue
                    yield row(profile, tier, case, aspect, seconds, recipe)


def row(profile: Profile, tier: str, case: str, aspect: str, seconds: int,
        recipe: Recipe) -> dict[str, Any]:
    return {
        "tier": tier, "case": case, "aspect_ratio": aspect, "seconds": seconds,
        "pipeline": pipeline_label(recipe), "weights": recipe.weights, "steps": steps_label(recipe),
        "generation": f"{recipe.gen_width}x{recipe.gen_height}",
        "output": f"{recipe.output_width}x{recipe.output_height}",
        "gen_fps": round(recipe.gen_fps, 3), "fps": recipe.output_fps,
        "gen_frames": recipe.gen_frames, "frames": recipe.output_frames,
        "audio": recipe.audio, "guidance": recipe.guidance_scale, "vae_tiling": recipe.vae_tiling,
        "license": profile.license,
    }


def pipeline_label(recipe: Recipe) -> str:
    if len(recipe.stage_steps) == 1:
        return recipe.pipeline
    return f"{recipe.pipeline} 2-stage (x2 upsample)"


def steps_label(recipe: Recipe) -> str:
    return "+".join(str(steps) for steps in recipe.stage_steps)


def profile_json(profile: Profile) -> dict[str, Any]:
    from takeone.models.batch import profile_max_batch
    from takeone.models.weights import needs

    return {
        "name": profile.name, "family": profile.family, "description": profile.description,
        "license": profile.license,
        "weights": [{"repo": n.repo, "revision": n.revision, "folders": list(n.folders), "files": list(n.files)}
                    for n in needs(profile)],
        "seconds": {"low": profile.seconds.low, "high": profile.seconds.high, "step": profile.seconds.step},
        "max_seconds": max_seconds_table(profile),
        "max_batch": profile_max_batch(profile),
        "recipes": list(recipe_rows(profile)),
    }


def max_seconds_table(profile: Profile) -> dict[str, dict[str, int]]:
    """The longest clip per tier and aspect ratio (text or image to video), GPU memory allowing."""
    return {tier: {aspect: profile.max_seconds(tier, size[0], size[1]) for aspect, size in quality.sizes.items()}
            for tier, quality in profile.qualities.items()}


def profile_table(profile: Profile, root: Path | None = None) -> str:
    """A text table: one line per (tier, case), sizes and frames for each option; above it the
    pins, the commits of the weights on this machine (under ``root`` or the cache), the speed-ups
    and the seconds served."""
    from takeone.models.batch import batching_line
    from takeone.models.outlook import speedup_lines
    from takeone.models.weights import pin_lines, revision_lines

    lines = [f"{profile.name}: {profile.description}", f"license: {profile.license}", *pin_lines(profile),
             *revision_lines(profile, root), *speedup_lines(profile.speedups),
             f"seconds: {profile.durations_label()}, capped by GPU memory per tier and size as the"
             " seconds column shows (a longer request is a 400 naming the duration)", batching_line(profile)]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in recipe_rows(profile):
        grouped.setdefault((item["tier"], item["case"]), []).append(item)
    table = [COLUMNS] + [_summary(items) for items in grouped.values()]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines)


def _summary(items: list[dict[str, Any]]) -> tuple[str, ...]:
    first = items[0]

    def distinct(key: str) -> str:
        return " | ".join(dict.fromkeys(str(item[key]) for item in items))

    shown = [item for item in items if item["seconds"] in (5, 10)] or items
    fps = dict.fromkeys(f"{item['gen_fps']:g}->{item['fps']}" for item in shown)
    frames = [f"{item['gen_frames']}->{item['frames']}" for item in shown]
    audio = "yes" if first["audio"] else "no"
    return (first["tier"], first["case"], first["pipeline"], first["weights"],
            first["steps"], distinct("generation"), distinct("output"), " | ".join(fps), seconds_label(items),
            " | ".join(dict.fromkeys(frames)) + " (5 | 10 s)", audio)


def seconds_label(items: list[dict[str, Any]]) -> str:
    """The seconds served per aspect ratio, e.g. ``1-12 (16:9, 9:16), 1-20 (1:1)``."""
    spans: dict[str, list[str]] = {}
    for aspect in dict.fromkeys(item["aspect_ratio"] for item in items):
        served = [item["seconds"] for item in items if item["aspect_ratio"] == aspect]
        spans.setdefault(f"{min(served)}-{max(served)}", []).append(aspect)
    if len(spans) == 1:
        return next(iter(spans))
    return ", ".join(f"{span} ({', '.join(aspects)})" for span, aspects in spans.items())
