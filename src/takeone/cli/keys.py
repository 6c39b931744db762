"""``takeone keys``: create, list, revoke and credit API keys in the data folder's store.

    takeone keys create --data-dir data --credits 100 --scope ROUTE --rate-limit 30
    takeone keys credit --data-dir data KEY_ID 50
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from takeone.cli import key_credentials
from takeone.cli.common import SubParsers, add_data_dir
from takeone.core.errors import NotFound
from takeone.core.loras import check_name
from takeone.core.store import Store

T = TypeVar("T")


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list, revoke and credit API keys")
    ksub = keys.add_subparsers(title="keys commands")
    create = ksub.add_parser("create", help="create a key (printed once, on the last line)")
    add_data_dir(create)
    create.add_argument("--credits", type=float, required=True)
    create.add_argument("--scope", action="append", metavar="ROUTE",
                        help="a route (model slug) this key may call, or lora:NAME, a LoRA it may use"
                             " (repeatable; default: all)")
    create.add_argument("--rate-limit", type=int, metavar="PER_MIN")
    create.add_argument("--max-concurrent", type=int, metavar="JOBS")
    create.add_argument("--name", default="")
    create.add_argument("--key-pair", action="store_true",
                        help="also issue an access key + secret key pair (for HS256 JWT auth)")
    create.set_defaults(run=_create)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    add_data_dir(listing)
    listing.set_defaults(run=_list)
    revoke = ksub.add_parser("revoke", help="revoke a key, effective on its next request")
    add_data_dir(revoke)
    revoke.add_argument("key_id", help="key id (key_...) or its printed prefix")
    revoke.set_defaults(run=_revoke)
    credit = ksub.add_parser("credit", help="add credits to a key (negative to remove)")
    add_data_dir(credit)
    credit.add_argument("key_id")
    credit.add_argument("credits", type=float)
    credit.set_defaults(run=_credit)
    key_credentials.register(ksub)


def _with_store(args: argparse.Namespace, call: Callable[[Store], Coroutine[Any, Any, T]],
                create: bool = False) -> T:
    from takeone.backends.factory import open_store
    from takeone.core.settings import Settings

    settings = Settings(data_dir=args.data_dir, database_url=args.database)
    if settings.database_url is None and not create and not settings.db_path.exists():
        raise NotFound(f"no takeone data folder at {args.data_dir.resolve()} (no takeone.db there);"
                       " pass --data-dir (or --database), or create a key first")
    store = open_store(settings)
    try:
        return asyncio.run(call(store))
    finally:
        store.close()


def known_routes() -> tuple[str, ...]:
    from takeone.edge.dialects.registry import known_scopes

    return known_scopes()


def _create(args: argparse.Namespace) -> int:
    for route in args.scope or []:
        if route.startswith("lora:"):  # a LoRA the key may use (see `takeone loras`)
            check_name(route[len("lora:"):], "--scope")
        elif route not in known_routes():
            print(f"takeone: unknown scope {route!r} (known: {', '.join(known_routes())})", file=sys.stderr)
            return 2
    created = _with_store(args, lambda s: s.create(args.credits, args.scope, args.rate_limit,
                                                   args.max_concurrent, args.name), create=True)
    print(f"created {created.key.id} with {created.key.balance:g} credits;"
          " the key is shown once, below:")
    if args.key_pair:
        key_credentials.print_pair(*_with_store(
            args, lambda s: key_credentials.issue_pair(s, args, created.key.id)))
    print(created.secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    print(f"{'id':<18} {'prefix':<8} {'credits':>10} {'reserved':>9} {'rate/min':>8} "
          f"{'concurrent':>10} {'state':<8} scopes")
    for k in _with_store(args, lambda s: s.list_keys()):
        print(f"{k.id:<18} {k.prefix:<8} {k.balance:>10g} {k.reserved:>9g} "
              f"{k.rate_limit if k.rate_limit is not None else '-':>8} "
              f"{k.max_concurrent if k.max_concurrent is not None else '-':>10} "
              f"{'revoked' if k.revoked else 'active':<8} {','.join(k.scopes or ('*',))}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    key = _with_store(args, lambda s: s.revoke(args.key_id))
    print(f"revoked {key.id}")
    return 0


def _credit(args: argparse.Namespace) -> int:
    key = _with_store(args, lambda s: s.credit(args.key_id, args.credits))
    print(f"{key.id} now has {key.balance:g} credits")
    return 0
