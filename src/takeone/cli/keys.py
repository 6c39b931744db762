"""``takeone keys``: create, list, revoke, credit and debit API keys in the data folder's store.

    takeone keys create --credits 100 --scope ROUTE --rate-limit 30
    takeone keys credit KEY_ID 50
    takeone keys debit KEY_ID 20
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from takeone.cli import key_credentials
from takeone.cli.arguments import DEFAULT_DATA_DIR, SubParsers, add_data_dir
from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.loras import check_name

if TYPE_CHECKING:  # the store loads when a command runs, not for `takeone --help`
    from takeone.core.store import Store

T = TypeVar("T")


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list, revoke, credit and debit API keys")
    ksub = keys.add_subparsers(title="keys commands", metavar="COMMAND")
    keys.set_defaults(run=lambda args: _usage(keys))
    create = ksub.add_parser("create", help="create a key (printed once, on the last line)")
    add_data_dir(create)
    create.add_argument("--credits", type=float, required=True, metavar="AMOUNT",
                        help="the key's starting balance, in credits (0 or more)")
    create.add_argument("--scope", action="append", metavar="ROUTE",
                        help="a route (model slug) this key may call, or lora:NAME, a LoRA it may use"
                             " (repeatable; default: all)")
    create.add_argument("--rate-limit", type=int, metavar="PER_MIN",
                        help="generation requests per minute (default: the server's --rate-limit, else none)")
    create.add_argument("--max-concurrent", type=int, metavar="JOBS",
                        help="jobs queued or running at once (default: no limit)")
    create.add_argument("--max-queued", type=int, metavar="JOBS",
                        help="its share of the queue (default: the server's --queue-share of --max-queue)")
    create.add_argument("--name", default="", help="a label shown by `keys list`")
    create.add_argument("--key-pair", action="store_true",
                        help="also issue an access key + secret key pair (for HS256 JWT auth)")
    create.set_defaults(run=_create)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    add_data_dir(listing)
    listing.set_defaults(run=_list)
    revoke = ksub.add_parser("revoke", help="revoke a key, effective on its next request")
    add_data_dir(revoke)
    revoke.add_argument("key_id", metavar="KEY_ID", help=key_credentials.KEY_ID_HELP)
    revoke.set_defaults(run=_revoke)
    for name, verb, run in (("credit", "add credits to", _credit), ("debit", "remove credits from", _debit)):
        change = ksub.add_parser(name, help=f"{verb} a key (recorded in the ledger)")
        add_data_dir(change)
        change.add_argument("key_id", metavar="KEY_ID", help=key_credentials.KEY_ID_HELP)
        change.add_argument("credits", type=float, metavar="AMOUNT",
                            help=f"how many credits to {verb.split()[0]} (more than 0)")
        change.set_defaults(run=run)
    key_credentials.register(ksub)


def _usage(parser: argparse.ArgumentParser) -> int:
    """``takeone keys`` alone: its own commands, not the top-level usage."""
    parser.print_help()
    return 2


def _with_store(args: argparse.Namespace, call: Callable[[Store], Coroutine[Any, Any, T]],
                create: bool = False) -> T:
    import asyncio

    from takeone.backends.factory import open_store
    from takeone.core.settings import Settings

    settings = Settings(data_dir=args.data_dir, database_url=args.database)
    if settings.database_url is None and not create and not settings.db_path.exists():
        raise NotFound(f"no takeone data folder at {args.data_dir.resolve()} (no takeone.db there);"
                       " pass --data-dir (or --database), or create a key first")
    if settings.database_url is None and not settings.db_path.exists():
        say_new_database(settings.db_path)
    store = open_store(settings)
    try:
        return asyncio.run(call(store))
    finally:
        store.close()


def say_new_database(db_path: Path) -> None:
    """On stderr: this command starts a new database, and which others a server may be using
    (a key made here is unknown to a server on another data folder: it would answer 401)."""
    here = db_path.resolve()
    others = sorted({p.resolve() for p in (Path(DEFAULT_DATA_DIR) / "takeone.db", *Path().glob("*/takeone.db"))
                     if p.exists() and p.resolve() != here})
    print(f"takeone: starting a new database at {here}", file=sys.stderr)
    for other in others:
        print(f"takeone: note: {other} already exists; a server using {other.parent} will not know keys"
              f" made here (give every command the same --data-dir)", file=sys.stderr)


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
                                                   args.max_concurrent, args.name, args.max_queued),
                          create=True)
    print(f"created {created.key.id} with {created.key.balance:g} credits;"
          " the key is shown once, below:")
    if args.key_pair:
        key_credentials.print_pair(*_with_store(
            args, lambda s: key_credentials.issue_pair(s, args, created.key.id)))
    print(created.secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = _with_store(args, lambda s: s.list_keys())  # an error comes before any output
    print(f"{'id':<18} {'prefix':<8} {'credits':>10} {'reserved':>9} {'rate/min':>8} "
          f"{'concurrent':>10} {'queued':>6} {'state':<8} scopes")
    for k in keys:
        print(f"{k.id:<18} {k.prefix:<8} {k.balance:>10g} {k.reserved:>9g} "
              f"{k.rate_limit if k.rate_limit is not None else '-':>8} "
              f"{k.max_concurrent if k.max_concurrent is not None else '-':>10} "
              f"{k.max_queued if k.max_queued is not None else '-':>6} "
              f"{'revoked' if k.revoked else 'active':<8} {','.join(k.scopes or ('*',))}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    key = _with_store(args, lambda s: s.revoke(args.key_id))
    print(f"revoked {key.id}")
    return 0


def _positive(amount: float, other: str) -> float:
    """A credit or debit amount: more than 0 (the other command goes the other way)."""
    from takeone.core.accounts import check_amount

    if amount <= 0:
        raise InvalidRequest("AMOUNT", amount, f"must be more than 0 (`takeone keys {other}` goes the other way)")
    return check_amount("AMOUNT", amount)


def _credit(args: argparse.Namespace) -> int:
    amount = _positive(args.credits, "debit")
    key = _with_store(args, lambda s: s.credit(args.key_id, amount))
    print(f"{key.id} now has {key.balance:g} credits")
    return 0


def _debit(args: argparse.Namespace) -> int:
    amount = _positive(args.credits, "credit")
    key = _with_store(args, lambda s: s.credit(args.key_id, -amount))
    print(f"{key.id} now has {key.balance:g} credits")
    return 0
