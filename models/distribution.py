"""Citus: how each table is spread over the workers, and the row moves a merge needs.

On a PostgreSQL database where the `citus` extension is installed, `distribute` turns the
tables into Citus tables (SPEC §9): one user's rows live on one shard, so a user's reads and
writes are router queries to one worker.

- users, sessions, events, definition_matches, rage_clicks, user_versions, segment_members
  (the users a static segment lists): hash-distributed by `user_id`, co-located with `users`
  (a user's rows share a shard; joins on user_id stay on a worker);
- user_aliases: by `alias` (a key is routed by the value a request names), and
  idempotency_keys by `key` (a retried key reaches the shard that saw it): both keys are
  unique across the cluster through their primary keys, which include those columns;
- environments, api_keys, event_definitions, segments: reference tables, a copy on every
  node (small, environment-wide, joined with every shard).

On SQLite, plain PostgreSQL, or a Citus database whose tables are distributed already,
`distribute` does nothing.

`SESSION_SETTINGS` are set on every PostgreSQL connection of the server (on plain PostgreSQL
they are inert placeholders): the connections a Citus coordinator uses and keeps per worker.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import BigInteger, Table, delete, insert, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

# The distribution column of each hash-distributed table, in creation order: `users` first,
# the others co-located with it (or in their own group: None).
DISTRIBUTED: dict[str, tuple[str, str | None]] = {
    "users": ("user_id", None),
    "sessions": ("user_id", "users"),
    "events": ("user_id", "users"),
    "definition_matches": ("user_id", "users"),
    "rage_clicks": ("user_id", "users"),
    "segment_members": ("user_id", "users"),
    "user_versions": ("user_id", "users"),
    "user_aliases": ("alias", None),
    "idempotency_keys": ("key", None),
}
REFERENCE = ("environments", "api_keys", "event_definitions", "segments")
# Tables of one user's rows: a merge moves them from one user to another.
PER_USER = tuple(name for name, (column, _) in DISTRIBUTED.items() if column == "user_id")

# A multi-shard statement (a list page, a nested page of 50 users' sessions: one task per
# shard; a COPY of events: rows for every shard) runs on several connections per worker, up
# to 16 by default; Citus keeps one of them open after the statement and opens the others
# again for the next, a new worker backend each (tests/citus/EXPLAIN.md: 3 to 4 per page
# read, most of the time of a nested page). With at most 4 per worker per statement, all 4
# kept open and reused, the nested users → sessions → events query ran about twice as fast
# and a 1000-event COPY three times. The costs: a statement runs at most 4 shard tasks at
# once on a worker, and up to 4 idle connections per worker stay open for each server
# connection (at most 20), under the workers' `max_connections`.
SESSION_SETTINGS = {
    "citus.max_cached_conns_per_worker": "4",
    "citus.max_adaptive_executor_pool_size": "4",
}

_CITUS_INSTALLED = text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
_LOCAL_TABLES = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
    "AND c.oid NOT IN (SELECT logicalrelid::oid FROM pg_dist_partition)"
)


def citus_installed(conn: Connection) -> bool:
    """True on a PostgreSQL database where the citus extension is installed."""
    return conn.dialect.name == "postgresql" and conn.execute(_CITUS_INSTALLED).first() is not None


def distribute(conn: Connection) -> list[str]:
    """Make every planned table that is still local a Citus table (in the caller's
    transaction); the tables changed. Idempotent; nothing on SQLite or plain PostgreSQL."""
    if not citus_installed(conn):
        return []
    local = set(conn.execute(_LOCAL_TABLES).scalars())
    if not local & {*DISTRIBUTED, *REFERENCE}:
        return []
    # One connection per worker for the shard DDL: in a transaction that created the tables
    # (a fresh migration) parallel connections could not see them.
    conn.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
    changed: list[str] = []
    for name in REFERENCE:
        if name in local:
            conn.execute(text("SELECT create_reference_table(:t)"), {"t": name})
            changed.append(name)
    for name, (column, colocate_with) in DISTRIBUTED.items():
        if name in local:
            conn.execute(
                text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
                {"t": name, "c": column, "w": colocate_with or "none"},
            )
            changed.append(name)
    if changed:
        log.info("citus: distributed %s", ", ".join(changed))
    return changed


async def move_user_rows(
    conn: AsyncConnection, table: Table, *, environment_id: int, source_id: int, target_id: int
) -> None:
    """Give `source_id`'s rows of `table` to `target_id`: a copy, then a delete.

    Not an UPDATE of user_id: on Citus that is the distribution column, which an UPDATE
    may not change (the rows move to another shard). Both statements run in the caller's
    transaction, so the move is atomic on every database.
    """
    owned = (table.c.environment_id == environment_id) & (table.c.user_id == source_id)
    columns: list[Any] = [
        literal(target_id, BigInteger).label("user_id") if column.name == "user_id" else column
        for column in table.c
    ]
    await conn.execute(
        insert(table).from_select([c.name for c in table.c], select(*columns).where(owned))
    )
    await conn.execute(delete(table).where(owned))
