"""Time and randomness, in one place so tests can control them."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dateutil.parser

MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
MINUTE_US = 60 * MICROS
DAY_US = 24 * 60 * MINUTE_US
MAX_USER_ID = 2**53 - 1


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return time.time_ns() // 1000


def to_datetime(micros: int) -> datetime:
    """An aware UTC datetime from epoch microseconds."""
    return EPOCH + ONE_MICROSECOND * micros  # twice as fast as timedelta(microseconds=…)


def to_micros(moment: datetime) -> int:
    """Epoch microseconds from a datetime; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MICROSECOND


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time (naive when the text has no offset); ValueError otherwise.

    The standard library reads the usual forms (RFC 3339 among them) in well under a
    microsecond; dateutil's `isoparse` reads the rest of ISO 8601 (basic format, week dates,
    a lower-case `z`, `24:00`). Every ingestion route and the DateTime scalar read times here.
    """
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return dateutil.parser.isoparse(text)


@dataclass(frozen=True, slots=True)
class UnreadableTime:
    """A value sent as a date-time that is none (`"not-a-date"`, `"2026-02-30T10:00:00Z"`).

    The DateTime scalar reads such a value to this marker instead of failing the request, so
    that ingestion can refuse the one event that carries it (services/limits.py `timestamp`)
    and other arguments can refuse it naming their field (graph/input_conversion.py).
    """

    sent: Any


def random_user_id() -> int:
    """A fresh Heap-style user id for users created from an identity or anonymous id."""
    return secrets.randbelow(MAX_USER_ID) + 1


class RowIds:
    """Unique 63-bit ids for events and sessions, ordered roughly by creation time.

    Layout: milliseconds since 2020 (41 bits) | process tag (10 bits) | counter (12 bits).
    Ids only need to be unique per user (they are keyed by (environment, user, id)) and
    writes of one user are serialised, so a random process tag is enough across processes.
    """

    EPOCH_MS = 1_577_836_800_000

    def __init__(self) -> None:
        self._tag = secrets.randbelow(1024)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def next(self) -> int:
        with self._lock:
            ms = time.time_ns() // 1_000_000 - self.EPOCH_MS
            if ms > self._last_ms:
                self._last_ms, self._seq = ms, 0
            else:
                self._seq += 1
                if self._seq >= 4096:  # more than 4096 ids in one millisecond: borrow the next
                    self._last_ms, self._seq = self._last_ms + 1, 0
            return (self._last_ms << 22) | (self._tag << 12) | self._seq


row_ids = RowIds()
