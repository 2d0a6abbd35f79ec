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

from models import Event
from models.db import Database
from services import definitions, listing, rage_clicks, reading
from services.clock import now_us
from services.filters import Compiler, EventMatch, UserSessionFilter

K = TypeVar("K", bound=Hashable)
MAX_BATCH = 2000


class Loaders:
    """The loaders of one request, bound to its environment."""

    def __init__(self, db: Database, environment_id: int, at_us: int | None = None):
        self.db = db
        self.environment_id = environment_id
        self.now_us = at_us if at_us is not None else now_us()
        self.user = self._loader(self._users)
        self.session_stats = self._loader(self._session_stats)
        self.session = self._loader(self._sessions)
        self.event = self._loader(self._events)
        self.first_session = self._loader(self._first_sessions)
        self.last_session = self._loader(self._last_sessions)
        self.session_page = self._loader(self._session_pages)
        self.event_page = self._loader(self._event_pages)
        self.highlighted = self._loader(self._highlighted)
        self.session_count = self._loader(self._session_counts)
        self.definition = self._loader(self._definitions)
        self.definition_event_count = self._loader(self._definition_event_counts)
        self.event_definitions = self._loader(self._event_definitions)
        self.rage_click = self._loader(self._rage_clicks)
        self.session_has_rage_click = self._loader(self._sessions_with_rage_clicks)
        self.event_type_counts = self._loader(self._event_type_counts)

    def compiler(self) -> Compiler:
        """A filter compiler for this request's environment, dialect and moment."""
        return Compiler(
            self.environment_id,
            self.db.dialect,
            self.now_us,
            definition_condition=definitions.matched_by,
        )

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

    async def _session_pages(
        self, keys: list[tuple[int, int, Any, UserSessionFilter | None]]
    ) -> list[list[Any]]:
        """keys: (user id, limit, before cursor, filter)."""

        def fetch(owners: list[Any], limit: int, cursor: Any, narrowing: Any) -> Any:
            extra = self.compiler().user_sessions(narrowing)
            return self._read(
                reading.session_pages, user_ids=owners, limit=limit, before=cursor, extra=extra
            )

        return await _grouped(keys, fetch)

    async def _session_counts(self, keys: list[tuple[int, UserSessionFilter]]) -> list[int]:
        """keys: (user id, filter) -> number of the user's sessions the filter keeps."""
        groups: dict[UserSessionFilter, list[int]] = defaultdict(list)
        for user_id, narrowing in keys:
            groups[narrowing].append(user_id)
        counts: dict[tuple[int, UserSessionFilter], int] = {}
        for narrowing, users in groups.items():
            extra = self.compiler().user_sessions(narrowing)
            found = await self._read(reading.session_counts, user_ids=users, extra=extra)
            counts.update({(u, narrowing): found.get(u, 0) for u in users})
        return [counts[key] for key in keys]

    async def _highlighted(self, keys: list[tuple[tuple[int, int], EventMatch]]) -> list[bool]:
        """keys: ((user id, session id), event match) -> does the session hold such an event."""
        groups: dict[EventMatch, list[tuple[int, int]]] = defaultdict(list)
        for session, match in keys:
            groups[match].append(session)
        found: set[tuple[tuple[int, int], EventMatch]] = set()
        events = Event.__table__
        for match, sessions in groups.items():
            conditions = self.compiler().event_match(match, events)
            hits = await self._read(
                listing.sessions_containing, sessions=sessions, match=conditions, events=events
            )
            found.update((session, match) for session in hits)
        return [key in found for key in keys]

    async def _event_type_counts(self, keys: list[tuple[int, int]]) -> list[Any]:
        """(user, session) -> [(raw type, shown definition id, count)]."""
        found = await self._read(
            listing.event_type_counts,
            sessions=keys,
            shown_definition=definitions.best_definition_id,
        )
        return [found.get(k, []) for k in keys]

    async def _definitions(self, keys: list[int]) -> list[Any]:
        found = await self._read(definitions.get_many, definition_ids=keys)
        return [found.get(k) for k in keys]

    async def _definition_event_counts(
        self, keys: list[tuple[int, int | None, int | None]]
    ) -> list[int]:
        """keys: (definition id, from µs, to µs exclusive)."""
        groups: dict[tuple[int | None, int | None], list[int]] = defaultdict(list)
        for definition_id, low, high in keys:
            groups[(low, high)].append(definition_id)
        counts: dict[tuple[int, int | None, int | None], int] = {}
        for (low, high), wanted in groups.items():
            found = await self._read(
                definitions.event_counts, definition_ids=wanted, from_us=low, to_us=high
            )
            counts.update({(d, low, high): found.get(d, 0) for d in wanted})
        return [counts[key] for key in keys]

    async def _event_definitions(self, keys: list[tuple[int, int]]) -> list[list[Any]]:
        """(user, event) -> matching definitions, the one shown first."""
        found = await self._read(definitions.definitions_of_events, keys=keys)
        return [found.get(k, []) for k in keys]

    async def _rage_clicks(self, keys: list[tuple[int, int]]) -> list[bool]:
        found = await self._read(rage_clicks.rage_click_events, keys=keys)
        return [k in found for k in keys]

    async def _sessions_with_rage_clicks(self, keys: list[tuple[int, int]]) -> list[bool]:
        found = await self._read(rage_clicks.sessions_with_rage_clicks, session_keys=keys)
        return [k in found for k in keys]

    async def _event_pages(self, keys: list[tuple[tuple[int, int], int, Any]]) -> list[list[Any]]:
        """keys: ((user id, session id), limit, after cursor)."""
        return await _grouped(
            keys,
            lambda owners, limit, cursor: self._read(
                reading.event_pages, sessions=owners, limit=limit, after=cursor
            ),
        )


async def _grouped(
    keys: Sequence[tuple[Any, ...]],
    fetch: Callable[..., Awaitable[dict[Any, list[Any]]]],
) -> list[list[Any]]:
    """Answer (owner, *shape) keys with one fetch per distinct shape (limit, cursor, ...)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for owner, *shape in keys:
        groups[tuple(shape)].append(owner)
    pages: dict[tuple[Any, ...], list[Any]] = {}
    for shape, owners in groups.items():
        found = await fetch(owners, *shape)
        pages.update({(owner, *shape): found.get(owner, []) for owner in owners})
    return [pages[tuple(key)] for key in keys]
