"""``takeone db upgrade``: create or upgrade a shared PostgreSQL database's schema.

Servers upgrade the schema on start as well (under a lock, so replicas starting together do
not race); this command does it ahead of a rolling deploy, and tells which version it is at.

    takeone db upgrade --database postgresql://takeone@db.internal/takeone
"""

from __future__ import annotations

import argparse
import os

from takeone.cli.arguments import SubParsers


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="manage a shared PostgreSQL database (cluster mode)")
    dsub = db.add_subparsers(title="commands", required=True)
    upgrade = dsub.add_parser("upgrade", help="create or upgrade the database schema")
    upgrade.add_argument("--database", metavar="URL", default=os.environ.get("TAKEONE_DATABASE_URL"),
                         help="postgresql://USER:PASSWORD@HOST:PORT/DB (default: $TAKEONE_DATABASE_URL)")
    upgrade.set_defaults(run=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from takeone.backends.factory import check_database_url, redact
    from takeone.backends.postgres.db import upgrade
    from takeone.core.errors import InvalidRequest

    if not args.database:
        raise InvalidRequest("--database", None, "is required (or set TAKEONE_DATABASE_URL)")
    version = upgrade(check_database_url(args.database))
    print(f"database {redact(args.database)} is at schema version {version}")
    return 0
