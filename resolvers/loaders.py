"""Per-request dataloaders: each batch is one query on its own short-lived connection.

Pages are keyed by (owner, limit, cursor); keys that share (limit, cursor) are answered
together, so the statement count of a nested query depends on its shape, not on the
number of users or sessions in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from models.db import Database
from services import reading

K = TypeVar("K", bound=Hashable)
MAX_BATCH = 2000


class Loaders:
    """The loaders of one request, bound to its environment."""

    def __init__(self, db: Database, environment_id: int):
        self.db = db
        self.environment_id = environment_id
        self.user = self._loader(self._users)
        self.session_stats = self._loader(self._session_stats)
        self.session = self._loader(self._sessions)
        self.event = self._loader(self._events)
        self.first_session = self._loader(self._first_sessions)
        self.last_session = self._loader(self._last_sessions)
        self.session_page = self._loader(self._session_pages)
        self.event_page = self._loader(self._event_pages)

    @staticmethod
    def _loader(batch: Callable[[list[Any]], Awaitable[list[Any]]]) -> DataLoader:
        return DataLoader(batch, max_batch_size=MAX_BATCH)

    async def _read(self, query: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        async with self.db.read() as conn:
            return await query(conn, environment_id=self.environment_id, **kwargs)

    async def _users(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.users_by_id, user_ids=keys)
        return [found.get(k) for k in keys]

    async def _session_stats(self, keys: list[int]) -> list[tuple[int, int]]:
        found = await self._read(reading.session_stats, user_ids=keys)
        return [found.get(k, (0, 0)) for k in keys]

    async def _sessions(self, keys: list[tuple[int, int]]) -> list[Any]:
        found = await self._read(reading.sessions_by_id, keys=keys)
        return [found.get(k) for k in keys]

    async def _events(self, keys: list[tuple[int, int]]) -> list[Any]:
        found = await self._read(reading.events_by_id, keys=keys)
        return [found.get(k) for k in keys]

    async def _first_sessions(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.edge_sessions, user_ids=keys, last=False)
        return [found.get(k) for k in keys]

    async def _last_sessions(self, keys: list[int]) -> list[Any]:
        found = await self._read(reading.edge_sessions, user_ids=keys, last=True)
        return [found.get(k) for k in keys]

    async def _session_pages(self, keys: list[tuple[int, int, Any]]) -> list[list[Any]]:
        """keys: (user id, limit, before cursor)."""
        return await _grouped(
            keys,
            lambda owners, limit, cursor: self._read(
                reading.session_pages, user_ids=owners, limit=limit, before=cursor
            ),
        )

    async def _event_pages(self, keys: list[tuple[tuple[int, int], int, Any]]) -> list[list[Any]]:
        """keys: ((user id, session id), limit, after cursor)."""
        return await _grouped(
            keys,
            lambda owners, limit, cursor: self._read(
                reading.event_pages, sessions=owners, limit=limit, after=cursor
            ),
        )


async def _grouped(
    keys: Sequence[tuple[Any, int, Any]],
    fetch: Callable[[list[Any], int, Any], Awaitable[dict[Any, list[Any]]]],
) -> list[list[Any]]:
    groups: dict[tuple[int, Any], list[Any]] = defaultdict(list)
    for owner, limit, cursor in keys:
        groups[(limit, cursor)].append(owner)
    pages: dict[tuple[Any, int, Any], list[Any]] = {}
    for (limit, cursor), owners in groups.items():
        found = await fetch(owners, limit, cursor)
        pages.update({(owner, limit, cursor): found.get(owner, []) for owner in owners})
    return [pages[key] for key in keys]
