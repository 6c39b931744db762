"""The ``takeone`` command: serve, manage keys, generate one video locally.

    takeone serve --profile tiny --data-dir data
    takeone keys create --data-dir data --credits 100 --scope kling-2.6
    takeone generate kling-2.6 --prompt "a red fox in snow" -o fox.mp4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from takeone.cli.profiles import register as register_profile_commands
from takeone.core.settings import DEFAULT_PORT, Settings, env_fetch_allow

if TYPE_CHECKING:
    from takeone.accounts.keys import KeyStore

DEFAULT_DATA_DIR = "takeone-data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        result: int = args.run(args)
        return result
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `takeone profiles | head`
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="takeone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands")
    _add_serve(sub)
    _add_keys(sub)
    _add_generate(sub)
    register_profile_commands(sub)
    return parser


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("TAKEONE_DATA_DIR", DEFAULT_DATA_DIR)),
                   help="database, secrets and outputs (default: ./takeone-data or $TAKEONE_DATA_DIR)")


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the API server and its workers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    _data_dir(p)
    p.add_argument("--profile", default="ltx-2", help="model profile (see `takeone profiles`; tiny for testing)")
    _weights_args(p)
    p.add_argument("--public-url", help="absolute base URL clients use (default: from each request)")
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST",
                   help="exempt HOST from the image-fetch address checks (development); repeatable")
    p.add_argument("--workers", type=int, help="worker processes (default: one per GPU, else one)")
    p.add_argument("--prices", type=Path, help="TOML price table overriding the defaults")
    p.add_argument("--sync-timeout", type=float, default=900.0,
                   help="seconds a blocking POST /v1 call waits before 504 (default 900)")
    p.add_argument("--job-timeout", type=float, default=3600.0, help="per-job deadline in seconds")
    p.add_argument("--retention", type=float, default=24.0, help="hours results are kept (default 24)")
    p.add_argument("--sweep-interval", type=float, default=300.0,
                   help="seconds between retention sweeps (default 300)")
    p.add_argument("--max-queue", type=int, default=1000, help="queued jobs before submits get 429")
    p.add_argument("--rate-limit", type=int, help="default requests per minute for keys without one")
    p.add_argument("--debug-step-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=_serve)


def _weights_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, metavar="DIR",
                   help="read weights from DIR (DIR/<org>/<repo> folders or a Hugging Face cache;"
                        " default: $TAKEONE_WEIGHTS, else the Hugging Face cache)")
    p.add_argument("--offload", choices=["none", "auto", "group"],
                   help="GPU offloading when the profile does not fit the card (default: auto)")


def _weights_dir(args: argparse.Namespace) -> Path | None:
    from takeone.models.weights import root_from_env

    weights: Path | None = args.weights
    return weights if weights is not None else root_from_env()


def _check_profile(name: str, weights_dir: Path | None) -> str | None:
    """Why the profile cannot be served from this machine, or None."""
    from takeone.core.errors import WeightsMissing
    from takeone.models.registry import get_profile
    from takeone.models.weights import require_weights

    try:
        get_profile(name)
        require_weights(name, weights_dir)
    except (ValueError, WeightsMissing) as exc:
        return str(exc)
    return None


def serve_settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir, profile=args.profile, host=args.host, port=args.port,
        weights_dir=_weights_dir(args), offload=args.offload,
        public_url=args.public_url,
        fetch_allow=frozenset(args.fetch_allow) | env_fetch_allow(),
        workers=args.workers, prices_file=args.prices, sync_timeout_s=args.sync_timeout,
        job_timeout_s=args.job_timeout, retention_s=args.retention * 3600,
        link_ttl_s=max(args.retention * 3600, 3600), max_queue=args.max_queue,
        default_rate_limit=args.rate_limit, debug_step_delay_s=args.debug_step_delay,
        sweep_interval_s=args.sweep_interval,
    )


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from takeone.edge.app import create_app

    settings = serve_settings(args)
    problem = _check_profile(settings.profile, settings.weights_dir)
    if problem is not None:
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0


def _add_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list, revoke and credit API keys")
    ksub = keys.add_subparsers(title="keys commands")
    create = ksub.add_parser("create", help="create a key (printed once, on the last line)")
    _data_dir(create)
    create.add_argument("--credits", type=float, required=True)
    create.add_argument("--scope", action="append", metavar="SLUG",
                        help="a slug this key may call (repeatable; default: all)")
    create.add_argument("--rate-limit", type=int, metavar="PER_MIN")
    create.add_argument("--max-concurrent", type=int, metavar="JOBS")
    create.add_argument("--name", default="")
    create.set_defaults(run=_keys_create)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    _data_dir(listing)
    listing.set_defaults(run=_keys_list)
    revoke = ksub.add_parser("revoke", help="revoke a key, effective on its next request")
    _data_dir(revoke)
    revoke.add_argument("key_id", help="key id (key_...) or its printed prefix")
    revoke.set_defaults(run=_keys_revoke)
    credit = ksub.add_parser("credit", help="add credits to a key (negative to remove)")
    _data_dir(credit)
    credit.add_argument("key_id")
    credit.add_argument("credits", type=float)
    credit.set_defaults(run=_keys_credit)


def _key_store(data_dir: Path) -> KeyStore:
    from takeone.accounts.keys import KeyStore
    from takeone.backends.sqlite.db import Database

    return KeyStore(Database(data_dir / "takeone.backends.sqlite.db"), time.time)


def _keys_create(args: argparse.Namespace) -> int:
    from takeone.edge.dialects.segmind.registry import ENDPOINTS

    for slug in args.scope or []:
        if slug not in ENDPOINTS:
            print(f"takeone: unknown scope {slug!r} (known: {', '.join(ENDPOINTS)})", file=sys.stderr)
            return 2
    store = _key_store(args.data_dir)
    created = store.create(args.credits, args.scope, args.rate_limit,
                           args.max_concurrent, args.name)
    print(f"created {created.key.id} with {created.key.balance:g} credits;"
          " the key is shown once, below:")
    print(created.secret)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    store = _key_store(args.data_dir)
    print(f"{'id':<18} {'prefix':<8} {'credits':>10} {'reserved':>9} {'rate/min':>8} "
          f"{'concurrent':>10} {'state':<8} scopes")
    for k in store.list():
        print(f"{k.id:<18} {k.prefix:<8} {k.balance:>10g} {k.reserved:>9g} "
              f"{k.rate_limit if k.rate_limit is not None else '-':>8} "
              f"{k.max_concurrent if k.max_concurrent is not None else '-':>10} "
              f"{'revoked' if k.revoked else 'active':<8} {','.join(k.scopes or ('*',))}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    key = _key_store(args.data_dir).revoke(args.key_id)
    print(f"revoked {key.id}")
    return 0


def _keys_credit(args: argparse.Namespace) -> int:
    key = _key_store(args.data_dir).credit(args.key_id, args.credits)
    print(f"{key.id} now has {key.balance:g} credits")
    return 0


def _add_generate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="generate one video locally (no server needed)")
    p.add_argument("slug", choices=["kling-2.1", "kling-2.6"])
    p.add_argument("--prompt")
    p.add_argument("--negative-prompt")
    p.add_argument("--image", help="first frame: a file path or URL (kling-2.1, optional for 2.6)")
    p.add_argument("--image-tail", help="last frame (kling-2.1, mode pro or master)")
    p.add_argument("--mode")
    p.add_argument("--aspect-ratio")
    p.add_argument("--duration", type=int)
    p.add_argument("--cfg-scale", type=float)
    p.add_argument("--no-audio", action="store_true", help="kling-2.6: no audio track")
    p.add_argument("--seed", type=int)
    p.add_argument("--profile", default="ltx-2")
    _weights_args(p)
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST")
    p.add_argument("-o", "--output", type=Path, default=Path("takeone.mp4"))
    p.set_defaults(run=_generate)


def _generate(args: argparse.Namespace) -> int:
    from takeone.cli.generate import generate_locally

    args.weights = _weights_dir(args)
    problem = _check_profile(args.profile, args.weights)
    if problem is not None:
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    return generate_locally(args, frozenset(args.fetch_allow) | env_fetch_allow())


if __name__ == "__main__":
    raise SystemExit(main())
