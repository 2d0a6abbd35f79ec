"""Live events: each process's subscribers, fed with the events stored in their environment.

A `LiveHub` per server process hears which events were stored (services/live_notify.py:
PostgreSQL's LISTEN, or in-process on SQLite), reads those rows once per notification,
and hands each subscriber the rows its `LiveFilter` lets through.

Back-pressure: a subscriber's queue holds at most `queue_size` events. A subscriber that
does not keep up (its client stopped reading, so its WebSocket's send blocks) loses the
events that find its queue full; they are counted, and the next event it is handed says
how many were left out. Memory per subscriber is bounded whatever the rate of events.
Notifications waiting to be read are bounded too: beyond `MAX_PENDING` they are dropped and
counted for every subscriber of their environment.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

from models.db import Database
from services import identity
from services.identity import UserKey
from services.reading import events_by_id

log = logging.getLogger(__name__)

# Events a subscriber's queue holds before further ones are dropped (USERTRAIL_LIVE_QUEUE).
DEFAULT_QUEUE_SIZE = 1000
# Notifications (one per stored batch, or per 190 events) waiting for their rows to be read.
MAX_PENDING = 10_000

SUBSCRIBERS = Gauge("usertrail_live_subscribers", "Live event subscriptions open in this process")
QUEUED = Gauge(
    "usertrail_live_queued_events",
    "Events waiting in live subscribers' queues in this process (each queue is bounded)",
)
QUEUE_HIGH_WATER = Gauge(
    "usertrail_live_queue_high_water", "Most events one live subscriber's queue has held"
)
DROPPED = Counter(
    "usertrail_live_dropped_events_total", "Events left out of live streams: queue full"
)
DELIVERED = Counter("usertrail_live_events_total", "Events put in live subscribers' queues")

EventKey = tuple[int, int]  # (user id, event id)
_high_water = 0


class Closed(Exception):
    """The subscription was ended by the hub (the server is stopping)."""


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which events a subscription wants: one user's (by key), one type, some sources."""

    user: UserKey | None = None
    type: str | None = None
    sources: frozenset[str] | None = None  # None: any source

    def admits(self, row: Any, user_id: int | None) -> bool:
        """True when the row passes; `user_id`: the user the filter's key routes to now."""
        if self.user is not None and row.user_id != user_id:
            return False
        if self.type is not None and row.type != self.type:
            return False
        return self.sources is None or row.source in self.sources


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber's bounded queue of event rows, and what it lost since its last event."""

    environment_id: int
    filter: LiveFilter
    queue_size: int
    _rows: deque[Any] = field(default_factory=deque)
    _dropped: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def offer(self, row: Any) -> None:
        """Queue a row for the subscriber, or count it dropped when the queue is full."""
        if self.closed:  # unsubscribed while its rows were being read
            return
        if len(self._rows) >= self.queue_size:
            self._dropped += 1
            DROPPED.inc()
            return
        self._rows.append(row)
        QUEUED.inc()
        DELIVERED.inc()
        global _high_water
        if len(self._rows) > _high_water:
            _high_water = len(self._rows)
            QUEUE_HIGH_WATER.set(_high_water)
        self._ready.set()

    def lose(self, count: int) -> None:
        """Count events this subscriber will never see (e.g. notifications dropped)."""
        self._dropped += count
        DROPPED.inc(count)
        self._ready.set()

    async def next(self) -> tuple[Any | None, int]:
        """The next event row (None when only losses are to be told) and the number of events
        dropped since the previous one was taken."""
        while not self._rows and not self._dropped:
            if self.closed:  # the hub closed (the server is stopping)
                raise Closed
            self._ready.clear()
            await self._ready.wait()
        dropped, self._dropped = self._dropped, 0
        if not self._rows:
            return None, dropped
        QUEUED.dec()
        return self._rows.popleft(), dropped

    def _discard(self) -> None:
        QUEUED.dec(len(self._rows))
        self._rows.clear()


class LiveHub:
    """The live subscribers of one process and database; fed by `stored`."""

    def __init__(self, db: Database, *, queue_size: int = DEFAULT_QUEUE_SIZE):
        self.db = db
        self.queue_size = queue_size
        self._subscribers: dict[int, set[Subscription]] = {}
        self._pending: deque[tuple[int, list[EventKey]]] = deque()
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def subscribe(self, environment_id: int, live_filter: LiveFilter) -> Subscription:
        """A new subscription; events stored from now on reach it (`unsubscribe` it after)."""
        subscription = Subscription(environment_id, live_filter, self.queue_size)
        self._subscribers.setdefault(environment_id, set()).add(subscription)
        SUBSCRIBERS.inc()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_pending())
        return subscription

    def subscriber_count(self) -> int:
        """Subscriptions open in this process."""
        return sum(len(s) for s in self._subscribers.values())

    def unsubscribe(self, subscription: Subscription) -> None:
        """End a subscription: its queue is emptied and its stream completes."""
        if subscription.closed:
            return
        subscription.closed = True
        subscription._discard()
        subscription._ready.set()
        SUBSCRIBERS.dec()
        subscribers = self._subscribers.get(subscription.environment_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.environment_id]

    def stored(self, environment_id: int, keys: Sequence[EventKey]) -> None:
        """Events were committed in `environment_id` (called by whoever heard it)."""
        subscribers = self._subscribers.get(environment_id)
        if not subscribers or not keys:
            return
        if len(self._pending) >= MAX_PENDING:
            for subscription in subscribers:
                subscription.lose(len(keys))
            return
        self._pending.append((environment_id, list(keys)))
        self._wake.set()

    def lost(self) -> None:
        """Notifications may have been missed (the listening connection was lost)."""
        log.warning("live events: notifications may have been missed while reconnecting")

    async def close(self) -> None:
        """Stop reading notifications and end every subscription (server shutdown)."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                self.unsubscribe(subscription)

    async def _read_pending(self) -> None:
        """Read the rows of each notification, in order, and hand them out."""
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            environment_id, keys = self._pending.popleft()
            subscribers = list(self._subscribers.get(environment_id, ()))
            if not subscribers:
                continue
            try:
                await self._hand_out(environment_id, keys, subscribers)
            except Exception:  # noqa: BLE001 -- an outage must not end the stream for good
                log.exception("live events: reading %d stored events failed", len(keys))
                for subscription in subscribers:
                    subscription.lose(len(keys))

    async def _hand_out(
        self, environment_id: int, keys: list[EventKey], subscribers: list[Subscription]
    ) -> None:
        user_keys = [s.filter.user for s in subscribers if s.filter.user is not None]
        async with self.db.read() as conn:
            rows = await events_by_id(conn, environment_id=environment_id, keys=keys)
            users = (
                await identity.find_users(conn, environment_id=environment_id, keys=user_keys)
                if user_keys
                else {}
            )
        in_order = [rows[key] for key in keys if key in rows]  # as stored
        for subscription in subscribers:
            wanted = subscription.filter.user
            user = users.get(wanted) if wanted is not None else None
            user_id = user.user_id if user is not None else None
            for row in in_order:
                if subscription.filter.admits(row, user_id):
                    subscription.offer(row)
