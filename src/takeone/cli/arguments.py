"""Arguments and helpers shared by the ``takeone`` subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from takeone.core.errors import InvalidRequest

DEFAULT_DATA_DIR = "takeone-data"
SubParsers = argparse._SubParsersAction


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, unless its text already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("TAKEONE_DATA_DIR", DEFAULT_DATA_DIR)),
                   help="database, secrets and outputs (default: ./takeone-data or $TAKEONE_DATA_DIR)")
    p.add_argument("--database", metavar="URL", default=os.environ.get("TAKEONE_DATABASE_URL"),
                   help="a shared PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB) instead"
                        " of the data folder's SQLite file (default: $TAKEONE_DATABASE_URL)")
    p.add_argument("--secret-file", type=Path, metavar="PATH",
                   help="the server secret that signs links and seals key credentials; every replica"
                        " of a cluster needs the same one (default: DATA_DIR/secret.key)")


def secret_path(args: argparse.Namespace) -> Path:
    path: Path = args.secret_file or args.data_dir / "secret.key"
    return path


def add_weights_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, metavar="DIR",
                   help="read weights from DIR (DIR/<org>/<repo> folders or a Hugging Face cache;"
                        " default: $TAKEONE_WEIGHTS, else the Hugging Face cache)")
    p.add_argument("--offload", choices=["none", "auto", "group"],
                   help="GPU offloading when the profile does not fit the card (default: auto)")
    add_revision_arg(p)


def add_revision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", action="append", default=[], metavar="ORG/NAME=COMMIT",
                   help="pin a repo to a commit (repeatable; over $TAKEONE_REVISIONS, which workers inherit)")


def weights_dir(args: argparse.Namespace) -> Path | None:
    """The weights root the command names (or ``TAKEONE_WEIGHTS``); first sets its ``--revision``
    pins, since every command that reads weights asks for this before it does."""
    from takeone.models.weights import root_from_env

    apply_revisions(args)
    weights: Path | None = args.weights
    return weights if weights is not None else root_from_env()


def apply_revisions(args: argparse.Namespace) -> None:
    """Set the command's ``--revision`` pins (merged over ``TAKEONE_REVISIONS``, into it)."""
    from takeone.models.weights import ENV_REVISIONS, parse_pins, pin_from_flags

    flags: list[str] = getattr(args, "revision", None) or []
    for flag in flags:
        try:
            parse_pins([flag])
        except ValueError:
            raise InvalidRequest("--revision", flag, "expected ORG/NAME=COMMIT") from None
    try:
        pin_from_flags(flags)
    except ValueError:
        raise InvalidRequest(ENV_REVISIONS, os.environ.get(ENV_REVISIONS), "expected ORG/NAME=COMMIT,...") from None


def check_profile(name: str, weights: Path | None) -> str | None:
    """Why the profile cannot be served from this machine, or None."""
    from takeone.core.errors import WeightsMissing
    from takeone.models.registry import get_profile
    from takeone.models.weights import require_weights

    try:
        get_profile(name)
        require_weights(name, weights)
    except (ValueError, WeightsMissing) as exc:
        return str(exc)
    return None
