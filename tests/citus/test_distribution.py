"""The distribution plan (models/distribution.py): complete, keyed right, applied by
`usertrail migrate` on Citus only, and idempotent."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import UniqueConstraint

from models import Base
from models.distribution import DISTRIBUTED, PER_USER, REFERENCE
from models.migrate import upgrade
from tests.citus.explain import dsn
from tests.conftest import CITUS_URL

needs_citus = pytest.mark.skipif(
    not CITUS_URL, reason="set USERTRAIL_TEST_CITUS_URL to a Citus coordinator to run these"
)


def test_every_table_has_a_place_on_citus() -> None:
    # A new table must say how it is spread: else it would stay a local coordinator table.
    assert {t.name for t in Base.metadata.sorted_tables} == {*DISTRIBUTED, *REFERENCE}
    assert set(DISTRIBUTED).isdisjoint(REFERENCE)


def test_keys_of_distributed_tables_include_their_distribution_column() -> None:
    for name, (column, _) in DISTRIBUTED.items():
        table = Base.metadata.tables[name]
        keys = [
            table.primary_key,
            *[c for c in table.constraints if isinstance(c, UniqueConstraint)],
            *[i for i in table.indexes if i.unique],
        ]
        for key in keys:
            assert column in [c.name for c in key.columns], (name, key)


def test_per_user_tables_are_co_located_with_users() -> None:
    assert set(PER_USER) == {
        "users",
        "sessions",
        "events",
        "definition_matches",
        "rage_clicks",
        "segment_members",
        "user_versions",
    }
    assert all(DISTRIBUTED[name] == ("user_id", "users") for name in PER_USER if name != "users")


async def _citus_tables(url: str) -> dict[str, tuple[str, str, int]]:
    conn = await asyncpg.connect(dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT table_name::text AS name, citus_table_type, distribution_column, "
            "colocation_id FROM citus_tables"
        )
    finally:
        await conn.close()
    return {
        r["name"]: (r["citus_table_type"], r["distribution_column"], r["colocation_id"])
        for r in rows
    }


@needs_citus
async def test_migrate_distributes_the_tables_as_planned(database_url: str) -> None:
    found = await _citus_tables(database_url)
    assert {name for name, (kind, _, _) in found.items() if kind == "reference"} == set(REFERENCE)
    for name, (column, _) in DISTRIBUTED.items():
        assert found[name][:2] == ("distributed", column)
    assert len({found[name][2] for name in PER_USER}) == 1  # one co-location group


@needs_citus
async def test_migrate_again_changes_nothing_and_redistributes_a_restored_table(
    database_url: str,
) -> None:
    before = await _citus_tables(database_url)
    await asyncio.to_thread(upgrade, database_url)
    assert await _citus_tables(database_url) == before
    # A table made local again (as a pg_restore of a plain PostgreSQL dump leaves every
    # table) with rows in it: the next migrate distributes it, rows and all.
    conn = await asyncpg.connect(dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO segments (environment_id, name, name_key, filter, created_us, "
            "updated_us) VALUES (1, 'a', 'a', '{}', 0, 0)"
        )
        await conn.execute("SELECT undistribute_table('segments')")
        assert "segments" not in await _citus_tables(database_url)
        await asyncio.to_thread(upgrade, database_url)
        assert await conn.fetchval("SELECT count(*) FROM segments") == 1
    finally:
        await conn.close()
    assert (await _citus_tables(database_url))["segments"][0] == "reference"
