"""Throwaway databases for one bench run: SQLite files in a work directory, PostgreSQL databases.

Every database is created migrated and removed when the run ends (PostgreSQL databases are
dropped WITH (FORCE), so a crashed server cannot keep one alive).
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

    def __init__(self, pg_admin_url: str | None, keep: bool = False):
        self.pg_admin_url = pg_admin_url
        self.keep = keep
        self.directory = Path(tempfile.mkdtemp(prefix="usertrail-bench-"))
        self.postgres: list[str] = []

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

    async def _admin(self, sql: str) -> None:
        assert self.pg_admin_url is not None
        conn = await asyncpg.connect(asyncpg_dsn(self.pg_admin_url))
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
        shutil.rmtree(self.directory, ignore_errors=True)
