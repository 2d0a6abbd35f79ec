"""Moving between PostgreSQL and Citus with pg_dump (README "Scale: SQLite → PostgreSQL →
Citus"): a plain PostgreSQL database restored into a Citus coordinator is distributed by the
next `usertrail migrate` and reads as before; a Citus database dumped on its coordinator
restores into plain PostgreSQL and reads as before.

Each test loads a database through a real server, reads it back through GraphQL, moves it with
the real pg_dump and pg_restore, and reads it again through a server on the other side.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from models.distribution import DISTRIBUTED, REFERENCE
from models.migrate import upgrade
from tests.citus.cluster import CitusTemplates
from tests.citus.explain import dsn
from tests.conftest import CITUS_URL, LOCAL_PG, PostgresTemplates, Templates, start_server
from tests.support import USER_TIMELINE, Api

PG_DUMP = shutil.which("pg_dump")
PG_RESTORE = shutil.which("pg_restore")
# The plain PostgreSQL side: USERTRAIL_TEST_DATABASE_URL, else the local server.
PLAIN_URL = os.environ.get("USERTRAIL_TEST_DATABASE_URL") or LOCAL_PG

pytestmark = [
    pytest.mark.skipif(
        not CITUS_URL, reason="set USERTRAIL_TEST_CITUS_URL to a Citus coordinator to run these"
    ),
    pytest.mark.skipif(
        not (PG_DUMP and PG_RESTORE),
        reason="pg_dump and pg_restore are not on PATH (install the PostgreSQL client)",
    ),
]

NOW = datetime.now(UTC).replace(microsecond=0)
USERS = [str(7000 + n) for n in range(12)]
LIST = """
query { users(first: 50) { totalCount edges { node { userId identity eventCount
  sessions(first: 5) { edges { node { startTime eventCount
    events(first: 10) { edges { node { type time properties } } } } } } } } } }"""


@pytest.fixture
async def plain_pg() -> AsyncIterator[PostgresTemplates]:
    """Fresh databases on a plain PostgreSQL server (skipped, saying why, without one)."""
    try:
        conn = await asyncpg.connect(dsn(PLAIN_URL), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        pytest.skip(f"no plain PostgreSQL at {PLAIN_URL}: {error}")
    try:
        citus = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
    finally:
        await conn.close()
    if citus:
        pytest.skip(f"{PLAIN_URL} has the citus extension: no plain PostgreSQL to restore into")
    templates = PostgresTemplates(PLAIN_URL)
    yield templates
    await templates.teardown()


def _events(user: str, count: int) -> list[dict[str, Any]]:
    # Two sessions per user: a gap of more than the 30-minute timeout in the middle.
    return [
        {
            "event": "click" if i % 3 == 0 else "pageview",
            "userId": user,
            "source": "WEB",
            "timestamp": (
                NOW - timedelta(hours=2) + timedelta(minutes=i + (60 if i >= 5 else 0))
            ).isoformat(),
            "properties": {"path": f"/p/{i}", "n": i},
        }
        for i in range(count)
    ]


async def _load(url: str) -> None:
    running, server, task = await start_server(url)
    try:
        async with Api(running.url) as api:
            for user in USERS:
                result = await api.track_batch(_events(user, 8))
                assert result["accepted"] == 8, result
            # An identity: a user_aliases row (distributed by alias on Citus).
            await api.track_batch(
                [
                    {
                        "event": "login",
                        "userId": USERS[0],
                        "identity": "ada@example.com",
                        "source": "WEB",
                        "timestamp": NOW.isoformat(),
                    }
                ]
            )
    finally:
        server.should_exit = True
        await task


async def _read(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The users list (nested pages) and one user's timeline, read through a real server."""
    running, server, task = await start_server(url)
    try:
        async with Api(running.url) as api:
            users = await api.gql(LIST)
            timeline = await api.gql(USER_TIMELINE, identity="ada@example.com")
            # And it takes writes: a new event for an existing user, then a new user.
            result = await api.track_batch([*_events(USERS[1], 1), *_events("7999", 1)])
            assert result["accepted"] == 2
    finally:
        server.should_exit = True
        await task
    return users, timeline


def _check_loaded(users: dict[str, Any], timeline: dict[str, Any]) -> None:
    """What _load sent, counted independently of the server."""
    page = users["users"]
    assert page["totalCount"] == len(USERS)
    assert sorted(e["node"]["userId"] for e in page["edges"]) == sorted(USERS)
    # 8 events for each user, the first also a login.
    assert sum(e["node"]["eventCount"] for e in page["edges"]) == 8 * len(USERS) + 1
    user = timeline["user"]
    assert user["userId"] == USERS[0] and user["eventCount"] == 9


async def _dump(url: str, path: Path, *options: str) -> None:
    await _run(PG_DUMP, "--format=custom", "--no-owner", *options, f"--file={path}", dsn(url))


async def _restore(url: str, path: Path, *options: str) -> None:
    await _run(
        PG_RESTORE, "--no-owner", "--exit-on-error", *options, f"--dbname={dsn(url)}", str(path)
    )


async def _run(*command: str | None) -> None:
    process = await asyncio.create_subprocess_exec(
        *[c for c in command if c], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"{command[0]}: {err.decode()}{out.decode()}"


async def _table_kinds(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn(url))
    try:
        rows = await conn.fetch("SELECT table_name::text, citus_table_type FROM citus_tables")
    finally:
        await conn.close()
    return {name: kind for name, kind in rows}


async def test_a_postgresql_dump_restored_into_citus_is_distributed_by_migrate(
    plain_pg: PostgresTemplates, pg_templates: Templates, tmp_path: Path
) -> None:
    assert isinstance(pg_templates, CitusTemplates)
    source = await plain_pg.fresh()
    await _load(source)
    dump = tmp_path / "usertrail.dump"
    await _dump(source, dump)
    before = await _read(source)
    _check_loaded(*before)

    target = await pg_templates.empty()
    await _restore(target, dump)
    assert await _table_kinds(target) == {}  # restored as local tables
    await asyncio.to_thread(upgrade, target)  # `usertrail migrate`
    kinds = await _table_kinds(target)
    assert {name for name, kind in kinds.items() if kind == "reference"} == set(REFERENCE)
    assert {name for name, kind in kinds.items() if kind == "distributed"} == set(DISTRIBUTED)
    after = await _read(target)
    assert after == before


async def test_a_citus_dump_restores_into_plain_postgresql(
    plain_pg: PostgresTemplates, postgres_url: str, tmp_path: Path
) -> None:
    source = postgres_url  # a Citus database, distributed by its migration
    await _load(source)
    dump = tmp_path / "usertrail.dump"
    await _dump(source, dump)
    before = await _read(source)
    _check_loaded(*before)

    conn = await asyncpg.connect(dsn(PLAIN_URL))
    name = f"usertrail_t_dump_{os.getpid()}"
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    plain_pg.created.append(name)
    target = plain_pg.url(name)
    # Only the objects of Usertrail's schema: not the citus extension and its catalogs,
    # which a plain PostgreSQL server cannot create.
    await _restore(target, dump, "--schema=public")
    await asyncio.to_thread(upgrade, target)  # at head already: changes nothing
    after = await _read(target)
    assert after == before
