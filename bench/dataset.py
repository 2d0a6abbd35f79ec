"""The query benchmarks' data set: the demo population, built quickly and honestly.

Sending 1,000,000 events through the ingestion service takes longer than the whole bench
may (see the ingestion figures), so the data set is built in two steps:

1. a *tile* of the demo population (default 10,000 people, ~100,000 events) goes through
   the ingestion service in-process in batches of 1000 (`services.demo.load`: track,
   identify with merges, user properties), then a few event definitions are created
   (retroactive backfill); `--tile-users` as large as `--users` skips step 2;
2. the tile is replicated by relabelling, in SQL, until the data set has `--users` people:
   every row of every per-user table (users, aliases, sessions, events, definition matches,
   rage clicks, ...) is copied with a new userId, a prefixed identity/email/alias and its
   times shifted a little into the past. Each copy is exactly what the ingestion service
   stored for the tile, so sessions, counters and initial properties stay consistent.

PostgreSQL gets the very same rows by COPY from the SQLite file, then ANALYZE (what
autovacuum would do after a bulk load). SQLite is left as the server leaves it (no ANALYZE).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.databases import Databases, asyncpg_dsn
from models.db import Database
from services import demo, environments

MAX_USER_ID = 2**53 - 1
STRIDE = 1_000_000_007_989  # userId offset per copy: copies never collide with the tile
SHIFT_US = 7 * 60 * 1_000_000  # each copy lives 7 minutes (mod 3 hours) before the previous
# Text columns that must stay unique per environment: they get a per-copy prefix.
PREFIXED = {("users", "identity"), ("users", "email"), ("idempotency_keys", "key")}


@dataclass(slots=True)
class Dataset:
    """Where the query data set lives and how it was made."""

    sqlite_path: Path
    sqlite_url: str
    environment_id: int
    tile_users: int
    copies: int
    load_seconds: float = 0.0
    clone_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    timeline_user: str = ""

    def summary(self) -> dict[str, Any]:
        """The data set's figures for the JSON results."""
        return {
            "users": self.counts.get("users", 0),
            "events": self.counts.get("events", 0),
            "sessions": self.counts.get("sessions", 0),
            "tile_users": self.tile_users,
            "copies": self.copies,
            "tile_load_seconds": round(self.load_seconds, 1),
            "clone_seconds": round(self.clone_seconds, 1),
            "definitions": self.definitions,
            "timeline_user": self.timeline_user,
        }


async def _definitions(db: Database, environment_id: int) -> list[str]:
    """A few defined events, so that timelines resolve names through definitions."""
    try:
        from services import definitions
        from services.matching import Criterion, StringMatch
    except ImportError:  # definitions are another issue's work; the bench runs without them
        return []
    wanted = {
        "Add to cart": Criterion("click", target_text=StringMatch("EQUALS", "Add to cart")),
        "Buy now": Criterion("click", selector="#checkout button.buy"),
        "Viewed pricing": Criterion("pageview", path=StringMatch("EQUALS", "/pricing")),
    }
    for name, criterion in wanted.items():
        await definitions.create(db, environment_id=environment_id, name=name, criteria=[criterion])
    return list(wanted)


async def build(
    databases: Databases,
    *,
    users: int,
    days: int,
    seed: int,
    tile_users: int,
    say: Callable[[str], None],
) -> Dataset:
    """Load a tile through the ingestion service into SQLite, then replicate it to `users`."""
    copies = max(1, math.ceil(users / max(tile_users, 1)))
    tile = math.ceil(users / copies)
    url = await databases.sqlite("dataset")
    db = Database(url)
    try:
        environment_id = (await environments.ensure(db)).id
        dataset = Dataset(databases.sqlite_path("dataset"), url, environment_id, tile, copies)
        started = time.perf_counter()
        step = max(tile // 10, 1)

        def progress(batch: demo.DemoBatch, report: demo.LoadReport) -> None:
            if batch.people and report.people % step < batch.people:
                say(f"data set: {report.people:,}/{tile:,} people, {report.events:,} events")

        await demo.load(
            db,
            environment_id=environment_id,
            batches=demo.generate(users=tile, days=days, seed=seed, batch_size=1000),
            on_batch=progress,
        )
        dataset.definitions = await _definitions(db, environment_id)
        dataset.load_seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    _, dataset.timeline_user = await asyncio.to_thread(
        _describe, dataset.sqlite_path, environment_id
    )  # a person of the tile itself, not one of its copies
    if copies > 1:
        say(f"data set: replicating the tile of {tile:,} people ×{copies}")
        started = time.perf_counter()
        await asyncio.to_thread(_replicate, dataset.sqlite_path, environment_id, copies)
        dataset.clone_seconds = time.perf_counter() - started
    dataset.counts, _ = await asyncio.to_thread(_describe, dataset.sqlite_path, environment_id)
    return dataset


def _user_tables(connection: sqlite3.Connection) -> dict[str, list[str]]:
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    found = {}
    for name in names:
        columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')]
        if "user_id" in columns and "environment_id" in columns:
            found[name] = columns
    return found


def _expression(table: str, column: str) -> str:
    if column == "user_id":
        return f"(user_id + :offset) % {MAX_USER_ID}"
    if column.endswith("_us"):
        return f"{column} - :shift"
    if (table, column) in PREFIXED:
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE :prefix || {column} END"
    if table == "user_aliases" and column == "alias":
        return (
            "CASE kind WHEN 'user_id' THEN "
            f"CAST((CAST(alias AS INTEGER) + :offset) % {MAX_USER_ID} AS TEXT) "
            "ELSE :prefix || alias END"
        )
    return column


def _replicate(path: Path, environment_id: int, copies: int) -> None:
    """Add copies 1 .. copies-1 of every per-user row of the environment's tile."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-262144")
    connection.execute("BEGIN")
    connection.execute(
        "CREATE TEMP TABLE tile AS SELECT user_id FROM users WHERE environment_id = ?",
        (environment_id,),
    )
    tables = _user_tables(connection)
    for copy in range(1, copies):
        parameters = {
            "offset": copy * STRIDE,
            "shift": (copy * SHIFT_US) % (3 * 3600 * 1_000_000),
            "prefix": f"c{copy}.",
            "environment": environment_id,
        }
        for table, columns in tables.items():
            select = ", ".join(_expression(table, c) for c in columns)
            connection.execute(
                f'INSERT INTO "{table}" ({", ".join(columns)}) SELECT {select} FROM "{table}" '
                "WHERE environment_id = :environment AND user_id IN (SELECT user_id FROM tile)",
                parameters,
            )
    connection.execute("COMMIT")
    connection.close()


def _describe(path: Path, environment_id: int) -> tuple[dict[str, int], str]:
    """Row counts, and the userId with the most sessions (the timeline benchmark's user)."""
    connection = sqlite3.connect(path)
    counts = {
        table: connection.execute(
            f"SELECT count(*) FROM {table} WHERE environment_id = ?", (environment_id,)
        ).fetchone()[0]
        for table in ("users", "sessions", "events")
    }
    busiest = connection.execute(
        "SELECT user_id FROM sessions WHERE environment_id = ? "
        "GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
        (environment_id,),
    ).fetchone()
    connection.close()
    return counts, str(busiest[0]) if busiest else ""


# ------------------------------------------------------------------------ to PostgreSQL

CONVERT: dict[str, Callable[[Any], Any]] = {
    "boolean": bool,
    "bigint": int,
    "integer": int,
    "smallint": int,
    "double precision": float,
    "real": float,
}


async def copy_to_postgres(dataset: Dataset, url: str, say: Callable[[str], None]) -> float:
    """COPY every table of the data set's SQLite file into the migrated database at `url`."""
    started = time.perf_counter()
    source = sqlite3.connect(dataset.sqlite_path)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        columns_of: dict[str, list[tuple[str, str]]] = {}
        for row in await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ):
            columns_of.setdefault(row["table_name"], []).append(
                (row["column_name"], row["data_type"])
            )
        tables = [
            name
            for (name,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name in columns_of and name != "alembic_version"
        ]
        for table in tables:
            names = [name for name, _ in columns_of[table]]
            converters = [CONVERT.get(kind) for _, kind in columns_of[table]]
            cursor = source.execute(f'SELECT {", ".join(names)} FROM "{table}"')
            while rows := cursor.fetchmany(50_000):
                records = [
                    tuple(
                        value if value is None or convert is None else convert(value)
                        for value, convert in zip(row, converters, strict=True)
                    )
                    for row in rows
                ]
                await conn.copy_records_to_table(table, records=records, columns=names)
            say(f"data set: copied {table} to PostgreSQL")
        for row in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_default LIKE 'nextval(%'"
        ):
            table, column = row["table_name"], row["column_name"]
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f'coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
        source.close()
    return time.perf_counter() - started
