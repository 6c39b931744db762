"""The async face of the SQL store, generated: each :class:`~takeone.core.store.Store` method
runs the :class:`~takeone.backends.sql.store.SqlStore` method of the same name in a thread,
under the driver's guard (its retries, and its failures as
:class:`~takeone.core.errors.StoreUnavailable`), so the event loop never waits on the disk or
on another process's lock.

Nothing here names a store method: the face is made from the protocol's members when this
module is imported, and importing fails if :class:`SqlStore` lacks one or takes other
parameters. mypy sees the face as the protocol itself (its signatures are the protocol's).

Example::

    class SqliteStore(ThreadedStore):
        @classmethod
        def open(cls, path: Path) -> SqliteStore:
            return cls(SqlStore(SqliteDriver(path)))
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from takeone.backends.sql.store import SqlStore
from takeone.core.store import Store

if TYPE_CHECKING:
    _Face = Store
else:
    _Face = object


class ThreadedStore(_Face):
    """A :class:`Store` over one :class:`SqlStore` (``sync``, for code already in a thread)."""

    def __init__(self, sync: SqlStore) -> None:
        self.sync = sync

    def close(self) -> None:
        self.sync.close()


def store_methods(protocol: type = Store) -> list[str]:
    """The async methods of ``protocol`` and the protocols it joins, by name."""
    return sorted({name for cls in protocol.__mro__ if getattr(cls, "_is_protocol", False)
                   for name, member in vars(cls).items() if inspect.iscoroutinefunction(member)})


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


def _threaded(name: str, doc: str | None) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def call(self: ThreadedStore, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.sync, name)
        return await asyncio.to_thread(self.sync.db.guard, functools.partial(method, *args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = doc
    return call


def build_face(face: type, rules: type, protocol: type = Store) -> None:
    """Give ``face`` one async method per method of ``protocol``, each running ``rules``'
    method of that name; TypeError if ``rules`` lacks one or takes other parameters."""
    for name in store_methods(protocol):
        sync = getattr(rules, name, None)
        if sync is None or _parameters(sync) != _parameters(getattr(protocol, name)):
            raise TypeError(f"{rules.__name__}.{name} must take the parameters of {protocol.__name__}.{name}")
        setattr(face, name, _threaded(name, getattr(protocol, name).__doc__))


build_face(ThreadedStore, SqlStore)
