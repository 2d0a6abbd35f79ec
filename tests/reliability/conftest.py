"""Fixtures of the reliability tests: server subprocesses, fresh databases of either kind."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from models.db import Database
from services import environments
from tests.reliability.processes import ServerProcess

Spawn = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start `usertrail serve` subprocesses; every one is stopped at teardown."""
    started: list[ServerProcess] = []

    async def start(database_url: str, *, workers: int = 1) -> ServerProcess:
        server = ServerProcess(database_url, tmp_path, workers=workers)
        started.append(server)
        return await server.start()

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite file, whatever database the suite runs on."""
    path = tmp_path / "reliability.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind (the PostgreSQL one skips without a server)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


async def default_environment(database_url: str) -> tuple[Database, int]:
    """A Database on `database_url` and the id of the environment dev-mode servers act in."""
    db = Database(database_url)
    return db, (await environments.ensure(db)).id
