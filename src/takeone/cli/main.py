"""The ``takeone`` command: serve, run workers, manage keys, generate one video locally.

``takeone --help`` opens with :data:`EXAMPLES`, the first of which runs on any machine (the
tiny profile needs no weights).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from takeone.cli import db, keys, loras, serve
from takeone.cli.arguments import SubParsers, add_weights_args, check_profile, weights_dir
from takeone.cli.profiles import register as register_profile_commands
from takeone.core.errors import TakeoneError
from takeone.core.settings import env_fetch_allow
from takeone.edge.dialects.segmind.example import PROMPT_ONLY_SLUG


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        result: int = args.run(args)
        return result
    except TakeoneError as exc:  # a clear sentence, not a traceback
        print(f"takeone: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `takeone profiles | head`
        sys.stderr.close()
        return 0


SUMMARY = "takeone: serve, run workers, manage keys, generate one video locally."
EXAMPLES = """\
    takeone generate {slug} --profile tiny --prompt "a red fox in snow" -o fox.mp4
    takeone serve --profile tiny
    takeone keys create --credits 100
    takeone worker --profile tiny
    takeone profiles

Every command keeps its database, keys and videos in ./takeone-data unless given --data-dir
(or $TAKEONE_DATA_DIR): give the same one to all of them. The tiny profile needs no weights
(random pixels, for trying things out); the real ones (`takeone profiles`) are downloaded
once with `takeone pull PROFILE`."""


def build_parser() -> argparse.ArgumentParser:
    description = f"{SUMMARY}\n\n{EXAMPLES.format(slug=PROMPT_ONLY_SLUG)}"
    parser = argparse.ArgumentParser(prog="takeone", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands")
    serve.register(sub)
    keys.register(sub)
    db.register(sub)
    loras.register(sub)
    _add_generate(sub)
    register_profile_commands(sub)
    return parser


def _add_generate(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="generate one video locally (no server needed)")
    p.add_argument("slug", metavar="SLUG",
                   help="the model slug, as in POST /v1/SLUG (`takeone profiles` lists the profiles)")
    p.add_argument("--prompt", help="what the video shows (the slug's default where it has one)")
    p.add_argument("--negative-prompt", help="what to avoid")
    p.add_argument("--image", help="first frame: a file path or URL")
    p.add_argument("--image-tail", help="last frame (where the slug takes one)")
    p.add_argument("--mode", help="the slug's mode: std, pro or master (default: pro)")
    p.add_argument("--aspect-ratio", help="16:9, 9:16 or 1:1 (default: 16:9)")
    p.add_argument("--duration", type=int, help="seconds: 5 or 10 (default: the slug's)")
    p.add_argument("--cfg-scale", type=float, help="guidance from 0 to 1 (default: the slug's)")
    p.add_argument("--no-audio", action="store_true", help="no audio track (where the slug makes audio)")
    p.add_argument("--seed", type=int, help="0 to 2^32-1 (default: random)")
    p.add_argument("--profile", default="ltx-2", help="model profile (default: ltx-2; tiny needs no weights)")
    p.add_argument("--gpus-per-job", type=int, default=1, metavar="N",
                   help="render on a group of N devices (N CPU ranks over gloo without GPUs)")
    p.add_argument("--parallel", default="auto", choices=["auto", "cfg", "sequence"],
                   help="how the group splits the job (see README, Speed options)")
    add_weights_args(p)
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST",
                   help="exempt HOST from the image-fetch address checks (development); repeatable")
    p.add_argument("-o", "--output", type=Path, default=Path("takeone.mp4"),
                   help="where to write the MP4 (default: takeone.mp4)")
    p.set_defaults(run=_generate)


def _generate(args: argparse.Namespace) -> int:
    from takeone.cli.generate import check_image_args, generate_locally
    from takeone.cli.keys import known_routes

    if args.slug not in known_routes():
        print(f"takeone: unknown slug {args.slug!r} (known: {', '.join(known_routes())})", file=sys.stderr)
        return 2
    problem = check_image_args(args)
    if problem is not None:
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    args.weights = weights_dir(args)
    problem = check_profile(args.profile, args.weights)
    if problem is not None:
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    return generate_locally(args, frozenset(args.fetch_allow) | env_fetch_allow())


if __name__ == "__main__":
    raise SystemExit(main())
