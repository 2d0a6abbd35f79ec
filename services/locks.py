"""Per-user serialisation of writes.

PostgreSQL: transaction-scoped advisory locks, taken in two phases so that no cycle can
form: first the external keys a request names (identity, userId, anonymous id), sorted;
then the users they resolve to, sorted, in a separate key space. Every writer of a user's
rows holds that user's lock, so sessionization and merges of one user never interleave.
SQLite: the database has a single writer (see models/db.py); nothing to do here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.ext.asyncio import AsyncConnection

LOCK_SQL = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(:keys) AS k ORDER BY 1) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


def lock_id(*parts: object) -> int:
    """A signed 64-bit advisory lock id for a tuple of parts."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock(conn: AsyncConnection, ids: Iterable[int]) -> None:
    """Take the advisory locks `ids` (sorted; no-op on SQLite) until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted(set(ids))
    if keys:
        await conn.execute(LOCK_SQL, {"keys": keys})


def key_lock(environment_id: int, kind: str, value: str) -> int:
    return lock_id("key", environment_id, kind, value)


def user_lock(environment_id: int, user_id: int) -> int:
    return lock_id("user", environment_id, user_id)
