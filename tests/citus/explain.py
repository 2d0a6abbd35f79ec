"""Capture the statements a server runs, and read how Citus would route each (EXPLAIN)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from models.db import Database

TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)", re.IGNORECASE)
PER_USER = {"users", "sessions", "events", "definition_matches", "rage_clicks", "segment_members"}


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]

    @property
    def tables(self) -> set[str]:
        return set(TABLE.findall(self.sql))


@dataclass(frozen=True)
class Route:
    """What EXPLAIN says of a statement: Citus tasks (one per shard group) and the ports of
    the nodes shown (all of them for a router query, one for a multi-shard one)."""

    statement: Statement
    tasks: int
    ports: frozenset[int]
    plan: str


@contextmanager
def captured(db: Database) -> Iterator[list[Statement]]:
    """The statements `db`'s engines execute inside the block (with their parameters; the
    first row's for an executemany)."""
    found: list[Statement] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if many and parameters and isinstance(parameters[0], list | tuple):
            parameters = parameters[0]
        found.append(Statement(sql, tuple(parameters or ())))

    engines = {db.engine.sync_engine, db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def routes(url: str, statements: list[Statement]) -> list[Route]:
    """EXPLAIN each statement that reads or writes a table, on the database at `url`."""
    conn = await asyncpg.connect(dsn(url))
    found = []
    try:
        for statement in statements:
            if not statement.tables:
                continue  # advisory locks, SELECT 1
            rows = await conn.fetch("EXPLAIN " + statement.sql, *statement.parameters)
            plan = "\n".join(row[0] for row in rows)
            tasks = re.search(r"Task Count: (\d+)", plan)
            ports = frozenset(int(p) for p in re.findall(r"Node: host=\S+ port=(\d+)", plan))
            found.append(Route(statement, int(tasks.group(1)) if tasks else 0, ports, plan))
    finally:
        await conn.close()
    return found


async def shard_node(url: str, table: str, value: Any) -> int:
    """The port of the worker holding the shard of `table` that `value` hashes to."""
    conn = await asyncpg.connect(dsn(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT nodeport FROM citus_shards WHERE table_name = $1::regclass "
                "AND shardid = get_shard_id_for_distribution_column($1, $2::text)",
                table,
                str(value),
            )
        )
    finally:
        await conn.close()


async def shard_count(url: str, table: str) -> int:
    conn = await asyncpg.connect(dsn(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT shard_count FROM citus_tables WHERE table_name = $1::regclass", table
            )
        )
    finally:
        await conn.close()
