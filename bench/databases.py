"""Throwaway databases for one bench run: SQLite files in a work directory, PostgreSQL databases,
and Citus databases when a coordinator is given (`--citus-url`).

Every database is created migrated and removed when the run ends (PostgreSQL databases are
dropped WITH (FORCE), so a crashed server cannot keep one alive). A Citus database is made
on the coordinator and on every worker it lists, with the citus extension in each, the
nodes registered, then migrated (the migration distributes the tables).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from models.migrate import upgrade

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy or plain PostgreSQL URL as a DSN asyncpg (and Node) understands."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Databases:
    """Creates migrated databases on demand and removes them all in `close`."""

    def __init__(
        self, pg_admin_url: str | None, keep: bool = False, citus_admin_url: str | None = None
    ):
        self.pg_admin_url = pg_admin_url
        self.citus_admin_url = citus_admin_url
        self.keep = keep
        self.directory = Path(tempfile.mkdtemp(prefix="usertrail-bench-"))
        self.postgres: list[str] = []
        self.citus_databases: list[str] = []
        self.citus_nodes: list[tuple[str, int]] = []  # the coordinator first, then the workers

    async def postgres_reachable(self) -> str | None:
        """None when PostgreSQL answers, else why not."""
        if self.pg_admin_url is None:
            return "PostgreSQL not requested"
        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.pg_admin_url), timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            return f"PostgreSQL unreachable at {self.pg_admin_url}: {error}"
        await conn.close()
        return None

    def sqlite_path(self, label: str) -> Path:
        """The file of the SQLite database called `label`."""
        return self.directory / f"{label}.db"

    async def sqlite(self, label: str, *, migrate: bool = True) -> str:
        """The URL of a new (migrated) SQLite file called `label`."""
        url = f"sqlite+aiosqlite:///{self.sqlite_path(label)}"
        if migrate:
            await asyncio.to_thread(upgrade, url)
        return url

    async def postgresql(self, label: str, *, migrate: bool = True) -> str:
        """The URL of a new (migrated) PostgreSQL database whose name starts with `label`."""
        assert self.pg_admin_url is not None
        name = f"usertrail_bench_{label}_{secrets.token_hex(3)}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.postgres.append(name)
        url = (
            make_url(self.pg_admin_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
        if migrate:
            await asyncio.to_thread(upgrade, url)
        return url

    async def of(self, dialect: str, label: str) -> str:
        """A new migrated database of `dialect` (sqlite, postgresql, citus) called `label`."""
        if dialect == "sqlite":
            return await self.sqlite(label)
        if dialect == "citus":
            return await self.citus(label)
        return await self.postgresql(label)

    async def citus_reachable(self) -> str | None:
        """None when the Citus coordinator answers and lists workers, else why not."""
        if self.citus_admin_url is None:
            return "Citus not requested"
        coordinator = make_url(self.citus_admin_url)
        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.citus_admin_url), timeout=5)
            try:
                workers = await conn.fetch(
                    "SELECT nodename, nodeport FROM pg_dist_node "
                    "WHERE noderole = 'primary' AND groupid <> 0 ORDER BY nodeid"
                )
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            return f"no Citus coordinator at {self.citus_admin_url}: {error}"
        if not workers:
            return f"the Citus coordinator at {self.citus_admin_url} lists no workers"
        self.citus_nodes = [
            (coordinator.host or "127.0.0.1", coordinator.port or 5432),
            *[(row["nodename"], row["nodeport"]) for row in workers],
        ]
        return None

    def _citus_url(self, database: str, node: tuple[str, int] | None = None) -> str:
        assert self.citus_admin_url is not None
        host, port = node or self.citus_nodes[0]
        return (
            make_url(self.citus_admin_url)
            .set(drivername="postgresql+asyncpg", database=database, host=host, port=port)
            .render_as_string(hide_password=False)
        )

    async def citus(self, label: str) -> str:
        """The URL (on the coordinator) of a new migrated Citus database starting with `label`."""
        if not self.citus_nodes:
            problem = await self.citus_reachable()
            assert problem is None, problem
        name = f"usertrail_bench_{label}_{secrets.token_hex(3)}"
        admin = make_url(self.citus_admin_url or "").database or "postgres"
        self.citus_databases.append(name)
        for node in self.citus_nodes:
            await self._run(self._citus_url(admin, node), f'CREATE DATABASE "{name}"')
            await self._run(self._citus_url(name, node), "CREATE EXTENSION IF NOT EXISTS citus")
        (host, port), *workers = self.citus_nodes
        conn = await asyncpg.connect(asyncpg_dsn(self._citus_url(name)))
        try:
            await conn.execute("SELECT citus_set_coordinator_host($1, $2)", host, port)
            for worker_host, worker_port in workers:
                await conn.execute("SELECT citus_add_node($1, $2)", worker_host, worker_port)
        finally:
            await conn.close()
        url = self._citus_url(name)
        await asyncio.to_thread(upgrade, url)
        return url

    async def _admin(self, sql: str) -> None:
        assert self.pg_admin_url is not None
        await self._run(self.pg_admin_url, sql)

    async def _run(self, url: str, sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Drop the PostgreSQL databases and delete the SQLite files (unless `keep`)."""
        if self.keep:
            return
        for name in self.postgres:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.citus_admin_url and self.citus_databases:
            admin = make_url(self.citus_admin_url).database or "postgres"
            for name in self.citus_databases:  # the coordinator first: it connects to workers
                for node in self.citus_nodes:
                    await self._run(
                        self._citus_url(admin, node),
                        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                    )
        shutil.rmtree(self.directory, ignore_errors=True)
