"""Databases on a Citus cluster for the suite: one migrated template per node, copied per test.

USERTRAIL_TEST_CITUS_URL names the coordinator, in a database where the citus extension is
installed and the workers are registered (`citus_add_node`): its `pg_dist_node` says where
the workers are. A Citus database needs the extension on every node, the workers registered
on the coordinator, and its shards on the workers; so the template is made that way once
(the extension on each node, the nodes registered, `usertrail migrate`'s migrations
distributing the tables), and each test's database is `CREATE DATABASE … TEMPLATE` on every
node under one name (the coordinator reaches a worker's shards in the database of its own
name). A copy needs the template idle: the maintenance daemon Citus runs in each database
is stopped first.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from models.migrate import upgrade

# Shards per distributed table in the suite's databases: Citus's default is 32; fewer make
# the per-test copies and multi-shard queries cheaper, and still spread every table over
# every worker (USERTRAIL_TEST_CITUS_SHARDS to change it).
SHARD_COUNT = int(os.environ.get("USERTRAIL_TEST_CITUS_SHARDS", "8"))
WORKERS_SQL = (
    "SELECT nodename, nodeport FROM pg_dist_node "
    "WHERE noderole = 'primary' AND groupid <> 0 ORDER BY nodeid"
)


@dataclass(frozen=True)
class Node:
    host: str
    port: int


class CitusUnavailable(RuntimeError):
    """The coordinator does not answer, or is no Citus coordinator with workers."""


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class CitusTemplates:
    """Creates Citus databases (on the coordinator and every worker) from one template."""

    def __init__(self, coordinator_url: str):
        self.admin_url = coordinator_url
        parsed = make_url(coordinator_url)
        self.coordinator = Node(parsed.host or "127.0.0.1", parsed.port or 5432)
        self.workers: list[Node] = []
        self.template = f"usertrail_ctpl_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.ready = False

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    def url(self, name: str, node: Node | None = None) -> str:
        node = node or self.coordinator
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=name, host=node.host, port=node.port)
            .render_as_string(hide_password=False)
        )

    async def _connect(self, node: Node, database: str | None = None) -> asyncpg.Connection:
        url = self.url(database or make_url(self.admin_url).database or "postgres", node)
        return await asyncpg.connect(_dsn(url), timeout=5)

    async def _on(self, node: Node, sql: str, *args: object, database: str | None = None) -> list:
        conn = await self._connect(node, database)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def check(self) -> None:
        """Read the workers from the coordinator; CitusUnavailable says what is missing."""
        try:
            rows = await self._on(self.coordinator, WORKERS_SQL)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise CitusUnavailable(
                f"no Citus coordinator at {self.admin_url}: {type(error).__name__}: {error}"
            ) from error
        self.workers = [Node(host, port) for host, port in rows]
        if not self.workers:
            raise CitusUnavailable(f"the coordinator at {self.admin_url} has no workers")

    async def _setup(self) -> None:
        await self._create(self.template)
        await asyncio.to_thread(upgrade, self.url(self.template))
        self.ready = True

    async def _create(self, name: str) -> None:
        """An empty Citus database `name`: on every node, with the extension, and the nodes
        registered on the coordinator."""
        if not self.workers:
            await self.check()
        for node in self.nodes:
            await self._on(node, f'CREATE DATABASE "{name}"')
            await self._on(node, "CREATE EXTENSION IF NOT EXISTS citus", database=name)
        coordinator = await self._connect(self.coordinator, name)
        try:
            # Read by create_distributed_table in the migration; copies do not inherit it.
            await coordinator.execute(
                f'ALTER DATABASE "{name}" SET citus.shard_count = {SHARD_COUNT}'
            )
            await coordinator.execute(
                "SELECT citus_set_coordinator_host($1, $2)",
                self.coordinator.host,
                self.coordinator.port,
            )
            for worker in self.workers:
                await coordinator.execute("SELECT citus_add_node($1, $2)", worker.host, worker.port)
        finally:
            await coordinator.close()

    async def empty(self) -> str:
        """A new Citus database with no tables yet (what a restore goes into)."""
        name = f"usertrail_c_{secrets.token_hex(6)}"
        self.created.append(name)
        await self._create(name)
        return self.url(name)

    async def _quiesce_template(self) -> None:
        """End every session in the template, on every node: Citus's maintenance daemons
        (each connects to the other nodes' template too) and their connections. A daemon
        stopped by a terminate is started again only by a session that uses Citus there."""
        sql = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()"
        )
        await asyncio.gather(*[self._on(node, sql, self.template) for node in self.nodes])

    async def fresh(self) -> str:
        """A new Citus database copied from the migrated template (made on first use)."""
        if not self.ready:
            await self._setup()
        name = f"usertrail_c_{secrets.token_hex(6)}"
        self.created.append(name)
        # FILE_COPY: after a DROP DATABASE, the default WAL_LOG copy of a template of many
        # small shard files slowed down here from 0.4 s to 4 s; a file copy stays at 0.4 s.
        sql = f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY'
        pending = list(self.nodes)
        for attempt in range(1, 6):
            await self._quiesce_template()
            results = await asyncio.gather(
                *[self._on(node, sql) for node in pending], return_exceptions=True
            )
            failed = [(n, r) for n, r in zip(pending, results, strict=True) if r is not None]
            failed = [(n, r) for n, r in failed if isinstance(r, BaseException)]
            for _, error in failed:
                if not isinstance(error, asyncpg.ObjectInUseError) or attempt == 5:
                    raise error
            pending = [node for node, _ in failed]  # a session came back: again
            if not pending:
                break
        return self.url(name)

    async def drop(self, name: str) -> None:
        """Drop `name` on every node, the coordinator first (it connects to the workers)."""
        if name in self.created:
            self.created.remove(name)
        sql = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        await self._drop_on(self.coordinator, sql)
        await asyncio.gather(*[self._drop_on(worker, sql) for worker in self.workers])

    async def _drop_on(self, node: Node, sql: str) -> None:
        # FORCE ends client sessions, not background workers: a Citus maintenance daemon
        # still in the database (stopped by the DROP, exiting) fails it now and then.
        for attempt in range(1, 6):
            try:
                await self._on(node, sql)
                return
            except asyncpg.ObjectInUseError:
                if attempt == 5:
                    raise
                await asyncio.sleep(0.5 * attempt)

    async def teardown(self) -> None:
        for name in [*self.created, *([self.template] if self.ready else [])]:
            await self.drop(name)
