"""What each fast path (USERTRAIL_FAST_PATHS) is worth: its workload with it on and off.

Each replacement of framework internals is measured on the workload it was written for,
against the stock path it replaces, everything else equal:

- executor (graph/execution.py + graph/field_plans.py): the nested users → sessions(5) →
  events(10) query, first 50, with FastExecutor or Strawberry's own execution context;
- response encoding (server/graphql_app.py `encode_json`): the same query answered with
  orjson or Strawberry's `json.dumps`;
- input conversion (graph/input_conversion.py): a 500-event `trackBatch` with the input
  classes' `from_input` plans or Strawberry's `convert_argument`.

Measured here (commit ead9ea6, December 2026, issue 18) and found not to pay:
graph/variables.py, removed (variables coerced along a plan: 0.97× wall, 0.98× CPU on the
500-event trackBatch; the ~10 ms of coercion it saves are lost in the request), and
models/sqlite_driver.py, removed (one worker-thread trip per statement instead of the stock
aiosqlite adapter's four; commit 3323610 of branch `driver` measured it here on Heap
`/api/track` and Segment `/v1/batch` ingestion, a `usertrail serve` per run, 5 strictly
interleaved rounds: 4,295 against 5,895 and 2,601 against 3,043 events/s, medians with and
without; see models/sqlite_connections.py).

The in-process workloads go through the whole app (httpx ASGITransport, real SQLite file),
on and off alternating request by request so that a slow spell of a shared machine falls on
both. Each figure is the median wall time and the median CPU time of the process (threads
included) per request; `ratio` is off / on, so 1.10 means the fast path saves 10 %.

    python -m bench.internals            # ~1 minute; also part of `make bench`
    python -m bench.internals --quick    # small and fast
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from bench import ingestion
from bench.databases import Databases
from bench.queries import NESTED, post
from graph import input_conversion
from graph.execution import FastExecutor
from models.db import Database
from server.app import create_app
from server.settings import Settings
from services import demo, environments

# Keep a fast path when it saves at least this much on its workload (off / on).
PAYS = 1.10
USERS = 300  # demo people the nested query reads (first 50, 5 sessions, 10 events each)
Toggle = Callable[[bool], None]
Request = Callable[[], Awaitable[None]]


def _ratio(off: float, on: float) -> float:
    return round(off / on, 2) if on else 0.0


async def alternate(
    request: Request, toggle: Toggle, *, rounds: int, warm_up: int = 2
) -> dict[str, Any]:
    """Median wall and CPU ms of `request` with the fast path on and off, in turn."""
    spent: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for number in range(warm_up + rounds):
        for on in (True, False) if number % 2 else (False, True):
            toggle(on)
            wall, cpu = time.perf_counter(), time.process_time()
            await request()
            if number >= warm_up:
                spent[on][0].append((time.perf_counter() - wall) * 1000)
                spent[on][1].append((time.process_time() - cpu) * 1000)
    toggle(True)
    figure: dict[str, Any] = {"rounds": rounds}
    for on, name in ((True, "on"), (False, "off")):
        walls, cpus = spent[on]
        figure[name] = {
            "wall_ms": round(statistics.median(walls), 2),
            "cpu_ms": round(statistics.median(cpus), 2),
        }
    figure["ratio_wall"] = _ratio(figure["off"]["wall_ms"], figure["on"]["wall_ms"])
    figure["ratio_cpu"] = _ratio(figure["off"]["cpu_ms"], figure["on"]["cpu_ms"])
    return figure


async def _load(url: str, users: int) -> None:
    db = Database(url)
    try:
        environment_id = (await environments.ensure(db)).id
        batches = demo.generate(users=users, days=14, seed=1)
        await demo.load(db, environment_id=environment_id, batches=batches)
    finally:
        await db.dispose()


async def in_process(url: str, *, rounds: int, batch: int, say: Callable[[str], None]) -> dict:
    """The executor, encoding and input conversion figures (one app, in turn)."""
    app = create_app(Settings(database_url=url, dev=True, fast_paths=True))
    graphql = next(route.app for route in app.routes if getattr(route, "path", "") == "/graphql")
    schema = graphql.schema
    results: dict[str, Any] = {}

    def executor(on: bool) -> None:
        schema.execution_context_class = (
            FastExecutor if on else StrawberryGraphQLCoreExecutionContext
        )

    def encoding(on: bool) -> None:
        graphql.fast_json = on

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def nested() -> None:
                await post(client, NESTED, {"first": 50})

            say("internals: nested query, executor on/off")
            results["executor"] = await alternate(nested, executor, rounds=rounds)
            executor(True)
            say("internals: nested query, orjson / json.dumps responses")
            results["encoding"] = await alternate(nested, encoding, rounds=rounds)
            body = {"data": await post(client, NESTED, {"first": 50})}
            results["encoding"]["response_bytes"] = len(orjson.dumps(body))

            needed = (rounds + 2) * 2  # on and off, warm-up included
            items = ingestion.demo_events(needed * batch, seed=4242)
            bodies = iter(
                orjson.dumps(ingestion.graphql_body(items[i : i + batch]))
                for i in range(0, len(items), batch)
            )

            async def track_batch() -> None:
                answer = await client.post(
                    "/graphql",
                    content=next(bodies),
                    headers={"content-type": "application/json"},
                )
                if ingestion.ROUTES[0].accepted(answer.json()) != batch:
                    raise RuntimeError("trackBatch did not store the whole batch")

            say(f"internals: {batch}-event trackBatch, input conversion on/off")
            results["input_conversion"] = await alternate(
                track_batch, input_conversion.enable, rounds=rounds
            )
    return results


async def run(
    databases: Databases,
    *,
    users: int,
    rounds: int,
    batch: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every fast path's figure; results keyed by fast path."""
    url = await databases.sqlite("internals")
    say(f"internals: demo population of {users:,} people for the nested query")
    await _load(url, users)
    results = await in_process(url, rounds=rounds, batch=batch, say=say)
    results["pays_at"] = PAYS
    return results


ROWS = (
    ("executor", "executor + field plans: nested query (first 50)"),
    ("encoding", "orjson responses: nested query (first 50)"),
    ("input_conversion", "input conversion: 500-event trackBatch"),
)


def add_rows(table: Table, results: dict[str, Any]) -> None:
    """Rows for the bench's table: each fast path on / off, SQLite, in-process."""
    figures = results.get("internals") or {}
    table.add_row(
        "[bold]Fast paths[/] (bench/internals.py, USERTRAIL_FAST_PATHS): on → off, "
        "median wall ms (CPU ms), in-process on SQLite"
    )
    if not figures or "executor" not in figures:
        table.add_row("  fast paths", f"skipped: {figures.get('skipped', 'stage failed')}")
        return
    wanted = f"kept when off/on ≥ {figures.get('pays_at', PAYS):.2f}"
    for key, label in ROWS:
        figure = figures[key]
        on, off = figure["on"], figure["off"]
        table.add_row(
            f"  {label}",
            f"{on['wall_ms']:.1f} ({on['cpu_ms']:.1f}) → "
            f"{off['wall_ms']:.1f} ({off['cpu_ms']:.1f})",
            "—",
            f"off/on: {figure['ratio_wall']:.2f}× wall, {figure['ratio_cpu']:.2f}× CPU "
            f"(n={figure['rounds']})",
            wanted,
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.internals`: these figures alone, as a table and JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.internals", description=__doc__)
    parser.add_argument("--users", type=int, default=USERS, help=f"demo people ({USERS})")
    parser.add_argument("--rounds", type=int, default=15, help="requests each way (15)")
    parser.add_argument("--quick", action="store_true", help="60 people, 5 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rounds = 60, 5
    console = Console(stderr=True)
    started = time.perf_counter()

    def say(message: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f} s[/] {message}")

    async def measure() -> dict[str, Any]:
        databases = Databases(None)
        try:
            return await run(
                databases,
                users=args.users,
                rounds=args.rounds,
                batch=ingestion.BATCH_SIZE,
                say=say,
            )
        finally:
            await databases.close()

    results = {"internals": asyncio.run(measure())}
    table = Table(title="Usertrail fast paths")
    for column in ("Figure", "SQLite", "—", "Same-run comparison", "Kept when"):
        table.add_column(column)
    add_rows(table, results)
    Console(width=None if sys.stdout.isatty() else 180).print(table)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
