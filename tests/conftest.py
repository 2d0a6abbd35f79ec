"""Fixtures: a migrated database per test (SQLite file or PostgreSQL database), a real server.

The suite runs on SQLite by default. With USERTRAIL_TEST_DATABASE_URL set to a PostgreSQL
URL, every database test runs on PostgreSQL instead (`.ci/run` does both). Tests marked
`postgres` always need PostgreSQL: they use USERTRAIL_TEST_DATABASE_URL or the local server
at 127.0.0.1:5432 and are skipped, with the reason printed, when neither answers.
With USERTRAIL_TEST_CITUS_URL set to a Citus coordinator URL, every database test, the
`postgres` ones included, runs on a Citus database instead (tests/citus/cluster.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from models.db import Database
from models.migrate import upgrade
from server.app import create_app
from server.settings import Settings
from services import environments
from tests.citus.cluster import CitusTemplates, CitusUnavailable
from tests.support import Api

CITUS_URL = os.environ.get("USERTRAIL_TEST_CITUS_URL")
# On Citus the whole suite runs there, as it does on PostgreSQL with PG_URL.
PG_URL = CITUS_URL or os.environ.get("USERTRAIL_TEST_DATABASE_URL")
LOCAL_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def pytest_report_header(config: pytest.Config) -> str:
    if CITUS_URL:
        return f"usertrail database: Citus, coordinator {CITUS_URL}"
    return f"usertrail database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite files'}"


async def _pg_reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(_dsn(url), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresTemplates:
    """Creates databases from one migrated template (CREATE DATABASE … TEMPLATE is fast)."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.template = f"usertrail_tpl_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.ready = False

    def url(self, name: str) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(_dsn(self.admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _setup(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.template}"')
        await asyncio.to_thread(upgrade, self.url(self.template))
        self.ready = True

    async def fresh(self) -> str:
        """A new database copied from the migrated template (made on first use)."""
        if not self.ready:
            await self._setup()
        name = f"usertrail_t_{secrets.token_hex(6)}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self.url(name)

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def teardown(self) -> None:
        for name in [*self.created, *([self.template] if self.ready else [])]:
            await self.drop(name)


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


Templates = PostgresTemplates | CitusTemplates


@pytest.fixture(scope="session")
async def pg_templates() -> AsyncIterator[Templates | None]:
    if CITUS_URL:
        citus = CitusTemplates(CITUS_URL)
        try:
            await citus.check()
        except CitusUnavailable as error:
            pytest.fail(f"USERTRAIL_TEST_CITUS_URL: {error}")
        yield citus
        await citus.teardown()
        return
    url = PG_URL or LOCAL_PG
    if not await _pg_reachable(url):
        if PG_URL:
            pytest.fail(f"USERTRAIL_TEST_DATABASE_URL={PG_URL} is not reachable")
        yield None
        return
    templates = PostgresTemplates(url)
    yield templates
    await templates.teardown()


async def _sqlite_copy(template: Path, directory: Path) -> str:
    path = directory / "usertrail.db"
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _fresh_database(
    templates: Templates | None, sqlite_template: Path, directory: Path
) -> str:
    if PG_URL:
        assert templates is not None
        return await templates.fresh()
    return await _sqlite_copy(sqlite_template, directory)


async def _done_with(templates: Templates | None, url: str) -> None:
    """Drop a Citus database once its test is over: each runs a maintenance daemon (a
    worker process) on every node while it exists. PostgreSQL ones go at the session's end."""
    if isinstance(templates, CitusTemplates):
        await templates.drop(str(make_url(url).database))


@pytest.fixture
async def database_url(
    pg_templates: Templates | None, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[str]:
    """A freshly migrated database for this test."""
    url = await _fresh_database(pg_templates, sqlite_template, tmp_path)
    yield url
    await _done_with(pg_templates, url)


@pytest.fixture(scope="module")
async def module_database_url(
    pg_templates: Templates | None,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """A freshly migrated database shared by the tests of one module."""
    url = await _fresh_database(pg_templates, sqlite_template, tmp_path_factory.mktemp("module"))
    yield url
    await _done_with(pg_templates, url)


@pytest.fixture(scope="module")
async def module_server(module_database_url: str) -> AsyncIterator[RunningServer]:
    """A real server over a database shared by the tests of one module (loaded once)."""
    running, server, task = await start_server(module_database_url)
    yield running
    server.should_exit = True
    await task


@pytest.fixture
async def postgres_url(pg_templates: Templates | None) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (a Citus one when the suite runs on Citus); the test is
    skipped (and says why) without PostgreSQL."""
    if pg_templates is None:
        pytest.skip(
            "PostgreSQL is not reachable at 127.0.0.1:5432 "
            "(set USERTRAIL_TEST_DATABASE_URL to run PostgreSQL tests)"
        )
    url = await pg_templates.fresh()
    yield url
    await _done_with(pg_templates, url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def environment_id(db: Database) -> int:
    return (await environments.ensure(db, name=f"test-{secrets.token_hex(4)}")).id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, url: str, app: object):
        self.url = url
        self.app = app

    @property
    def db(self) -> Database:
        return self.app.state.usertrail.db  # type: ignore[attr-defined]


async def start_server(
    database_url: str, **settings: object
) -> tuple[RunningServer, uvicorn.Server, asyncio.Task[None]]:
    port = free_port()
    app = create_app(
        Settings(database_url=database_url, port=port, dev=True).with_overrides(**settings)
    )
    server = uvicorn.Server(
        # No proxy_headers, as `usertrail serve` runs uvicorn: the app alone decides whose
        # X-Forwarded-For to believe (USERTRAIL_TRUSTED_PROXIES, server/client_address.py).
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", app), server, task


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[RunningServer]:
    """A real uvicorn server in dev mode on a free port, over this test's database."""
    running, server, task = await start_server(database_url)
    yield running
    server.should_exit = True
    await task


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    async with Api(server.url) as client:
        yield client
