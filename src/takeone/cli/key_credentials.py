"""``takeone keys webhook | webhook-secret | key-pair``: a key's webhook settings and its
access-key pair (for clients that sign HS256 tokens rather than send the key).

    takeone keys webhook KEY_ID https://hooks.example.com/takeone
    takeone keys webhook-secret KEY_ID   # whsec_..., shown once
    takeone keys key-pair KEY_ID         # access key + secret key, shown once

Secrets are stored sealed with the data folder's ``secret.key`` (see
:mod:`takeone.core.credentials`), never in plaintext in the database.
"""

from __future__ import annotations

import argparse
import secrets
from typing import TYPE_CHECKING

from takeone.cli.arguments import add_data_dir, secret_path
from takeone.core.errors import InvalidRequest

if TYPE_CHECKING:  # loaded when a command runs, not for `takeone --help`
    from takeone.core.credentials import SecretBox
    from takeone.core.store import Store

ACCESS_PREFIX, SECRET_PREFIX = "ak_", "sk_"
KEY_ID_HELP = "key id (key_...) or its printed prefix"


def register(ksub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hook = ksub.add_parser("webhook", help="set the URL that receives the key's webhook events")
    add_data_dir(hook)
    hook.add_argument("key_id", metavar="KEY_ID", help=KEY_ID_HELP)
    hook.add_argument("url", nargs="?", help="an http(s) URL; leave out with --clear")
    hook.add_argument("--clear", action="store_true", help="remove the key's webhook URL")
    hook.set_defaults(run=_webhook)
    secret = ksub.add_parser("webhook-secret",
                             help="make a new webhook signing secret (whsec_..., shown once)")
    add_data_dir(secret)
    secret.add_argument("key_id", metavar="KEY_ID", help=KEY_ID_HELP)
    secret.set_defaults(run=_webhook_secret)
    pair = ksub.add_parser("key-pair", help="issue a new access key + secret key pair (JWT auth)")
    add_data_dir(pair)
    pair.add_argument("key_id", metavar="KEY_ID", help=KEY_ID_HELP)
    pair.set_defaults(run=_key_pair)


async def _box(store: Store, args: argparse.Namespace) -> SecretBox:
    """The box that seals with the server secret, once the store confirms it is the shared one."""
    from takeone.core.credentials import SecretBox, check_shared_secret
    from takeone.core.server_secret import load_or_create_secret

    secret = load_or_create_secret(secret_path(args))
    await check_shared_secret(store, secret, str(secret_path(args)))
    return SecretBox(secret)


async def issue_pair(store: Store, args: argparse.Namespace, key_id: str) -> tuple[str, str]:
    """A new access key and secret key for the key (replacing any earlier pair)."""
    from takeone.core.credentials import ACCESS_CONTEXT, context_for

    key = await store.get_key(key_id)
    access, secret = ACCESS_PREFIX + secrets.token_hex(16), SECRET_PREFIX + secrets.token_urlsafe(32)
    sealed = (await _box(store, args)).seal(secret, context_for(key.id, ACCESS_CONTEXT))
    await store.set_access_key(key.id, access, sealed)
    return access, secret


def print_pair(access: str, secret: str) -> None:
    print(f"access key: {access}")
    print(f"secret key: {secret}")


def _webhook(args: argparse.Namespace) -> int:
    from takeone.cli.keys import _with_store
    from takeone.edge.background.webhooks.delivery import UrlRefused, parse_url

    if args.clear == (args.url is not None):
        raise InvalidRequest("url", args.url, "give a URL, or --clear to remove it")
    if args.url is not None:
        try:
            parse_url(args.url)
        except UrlRefused as exc:
            raise InvalidRequest("url", args.url, exc.reason) from None
    key = _with_store(args, lambda s: s.set_webhook_url(args.key_id, args.url))
    print(f"{key.id}: webhook {'removed' if args.clear else 'set to ' + args.url}")
    return 0


def _webhook_secret(args: argparse.Namespace) -> int:
    from takeone.cli.keys import _with_store
    from takeone.core.credentials import WEBHOOK_CONTEXT, context_for
    from takeone.edge.background.webhooks.signing import new_secret

    async def rotate(store: Store) -> tuple[str, str]:
        key = await store.get_key(args.key_id)
        secret = new_secret()
        sealed = (await _box(store, args)).seal(secret, context_for(key.id, WEBHOOK_CONTEXT))
        await store.set_webhook_secret(key.id, sealed)
        return key.id, secret

    key_id, secret = _with_store(args, rotate)
    print(f"{key_id}: new webhook signing secret (deliveries from now on are signed with it);"
          " it is shown once, below:")
    print(secret)
    return 0


def _key_pair(args: argparse.Namespace) -> int:
    from takeone.cli.keys import _with_store

    access, secret = _with_store(args, lambda s: issue_pair(s, args, args.key_id))
    print(f"new access key pair for {args.key_id} (any earlier pair stops working); shown once:")
    print_pair(access, secret)
    return 0
