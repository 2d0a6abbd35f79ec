"""`python -m bench`: run every benchmark, print one table, write bench/results/latest.json.

python -m bench                                 # the full run (make bench), ~10 minutes
python -m bench --users 2000 --quick            # small and fast
python -m bench --databases sqlite --no-peer    # without PostgreSQL and PostGraphile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console

from bench import bench_definitions, ingestion, internals, live, peer, queries, request_latency
from bench import dataset as datasets
from bench import export as exports
from bench.databases import DEFAULT_PG_URL, Databases, asyncpg_dsn
from bench.report import build_table, citus_table
from bench.server import ServerProcess

RESULTS = Path(__file__).parent / "results" / "latest.json"
QUICK = {
    "users": 2000,
    "runs": 5,
    "ingest_events": 2000,
    "ingest_rounds": 1,
    "max_shape_seconds": 10.0,
    "definition_events": 20_000,
    "latency_runs": 2,
    "internals_rounds": 3,
    "live_events": 20,
    "live_flood_batches": 4,
}
FULL = {
    "users": 100_000,
    "runs": 30,
    "ingest_events": 20_000,
    "ingest_rounds": 3,
    "max_shape_seconds": 60.0,
    "definition_events": 1_000_000,
    "latency_runs": 10,
    "internals_rounds": 15,
    "live_events": 200,
    "live_flood_batches": 40,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, help="people in the query data set (100,000)")
    parser.add_argument("--days", type=int, default=14, help="days of demo activity (14)")
    parser.add_argument("--seed", type=int, default=1, help="demo seed (1)")
    parser.add_argument(
        "--tile-users",
        type=int,
        default=10_000,
        help="people loaded through the ingestion service before replication (10,000)",
    )
    parser.add_argument("--ingest-events", type=int, help="events per ingestion run (20,000)")
    parser.add_argument(
        "--ingest-rounds", type=int, help="ingestion runs per route, the median shown (3)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=ingestion.BATCH_SIZE,
        help=f"events per request ({ingestion.BATCH_SIZE})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=ingestion.CONCURRENCY,
        help=f"concurrent clients ({ingestion.CONCURRENCY})",
    )
    parser.add_argument(
        "--definition-events",
        type=int,
        help="stored events defineEvent backfills over, SQLite (1,000,000; 0 skips)",
    )
    parser.add_argument(
        "--latency-runs", type=int, help="1000-event trackBatch requests timed per database (10)"
    )
    parser.add_argument(
        "--internals-rounds",
        type=int,
        help="requests each way per fast path, bench/internals.py (15; 0 skips)",
    )
    parser.add_argument("--runs", type=int, help="requests per query shape (30)")
    parser.add_argument(
        "--max-shape-seconds", type=float, help="stop a shape's runs after this (60; ≥ 5 runs)"
    )
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="sqlite,postgresql (default both)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"admin URL ({DEFAULT_PG_URL})")
    parser.add_argument(
        "--citus-url",
        help="a Citus coordinator's admin URL: adds a Citus column (its workers from pg_dist_node)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip PostGraphile")
    parser.add_argument(
        "--live-events", type=int, help="events timed from track to a subscriber (200)"
    )
    parser.add_argument(
        "--live-flood-batches",
        type=int,
        help="batches of 500 events stored while a subscriber stalls (40)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: " + str(QUICK))
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    return parser


def _settings(argv: list[str] | None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


class Run:
    """One bench run: its settings, results, and a log of progress on stderr."""

    def __init__(self, args: argparse.Namespace, console: Console):
        self.args = args
        self.console = console
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {
                key: str(value) if isinstance(value, Path) else value
                for key, value in vars(args).items()
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
            },
            "notes": [],
            "errors": [],
            "shapes": [{"key": s.key, "label": s.label} for s in queries.SHAPES],
            "ingestion": {},
            "request_latency": {},
            "queries": {},
            "statements": {},
            "query_server_peak_rss_mb": {},
            "peer": {},
            "segment_ratio_p50": {},
            "definitions": {},
            "internals": {},
            "export": {},
            "live": {},
        }

    def say(self, message: str) -> None:
        """Progress on stderr, with the time since the start."""
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[dim]{elapsed:6.1f} s[/] {message}", highlight=False)

    def note(self, message: str) -> None:
        """A remark printed under the table (and said now)."""
        self.results["notes"].append(message)
        self.say(f"[yellow]note:[/] {message}")

    async def stage(self, name: str, work: Callable[[], Awaitable[None]]) -> bool:
        """Run one stage; a failure is recorded (and the run goes on) rather than raised."""
        try:
            await work()
            return True
        except Exception as error:  # any failure is reported, not fatal
            self.results["errors"].append(f"{name}: {type(error).__name__}: {error}")
            self.say(f"[red]{name} failed:[/] {error}")
            self.console.print(traceback.format_exc(), highlight=False, markup=False)
            return False


async def _postgres_version(url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Every stage of the bench; the results (failures recorded in `errors`)."""
    bench = Run(args, console)
    results = bench.results
    dialects = [d.strip() for d in args.databases.split(",") if d.strip()]
    databases = Databases(args.pg_url if "postgresql" in dialects else None, keep=args.keep)
    if "postgresql" in dialects:
        problem = await databases.postgres_reachable()
        if problem:
            dialects.remove("postgresql")
            bench.note(f"PostgreSQL figures skipped: {problem}")
        else:
            results["machine"]["postgresql"] = await _postgres_version(args.pg_url)
    databases.citus_admin_url = args.citus_url
    if args.citus_url:
        problem = await databases.citus_reachable()
        if problem:
            bench.note(f"Citus figures skipped: {problem}")
        else:
            dialects.append("citus")
            results["machine"]["citus"] = (
                f"{len(databases.citus_nodes) - 1} workers; "
                f"PostgreSQL {await _postgres_version(args.citus_url)}"
            )
    try:
        await _run_stages(bench, databases, dialects)
    finally:
        await databases.close()
    results["seconds"] = round(time.perf_counter() - bench.started, 1)
    return results


async def _run_stages(bench: Run, databases: Databases, dialects: list[str]) -> None:
    args, results = bench.args, bench.results

    async def ingest() -> None:
        results["ingestion"] = await ingestion.run(
            databases,
            dialects,
            events=args.ingest_events,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            seed=args.seed + 1000,  # other people than the query data set's
            say=bench.say,
            rounds=args.ingest_rounds,
        )

    await bench.stage("ingestion", ingest)

    async def latency() -> None:
        results["request_latency"] = await request_latency.run(
            databases, dialects, runs=args.latency_runs, say=bench.say
        )

    await bench.stage("request latency", latency)
    if args.definition_events > 0:

        async def define() -> None:
            bench.say(f"defineEvent over {args.definition_events:,} stored events (SQLite)")
            results["definitions"] = await bench_definitions.run(args.definition_events)

        await bench.stage("event definitions", define)
    else:
        results["definitions"] = {"skipped": "--definition-events 0"}
    if args.internals_rounds > 0:

        async def fast_paths() -> None:
            results["internals"] = await internals.run(
                databases,
                users=min(args.users, internals.USERS),
                rounds=args.internals_rounds,
                batch=args.batch_size,
                say=bench.say,
            )

        await bench.stage("fast paths", fast_paths)
    else:
        results["internals"] = {"skipped": "--internals-rounds 0"}
    built: list[datasets.Dataset] = []

    async def build() -> None:
        built.append(
            await datasets.build(
                databases,
                users=args.users,
                days=args.days,
                seed=args.seed,
                tile_users=args.tile_users,
                say=bench.say,
            )
        )
        results["dataset"] = built[0].summary()
        if built[0].copies > 1:
            bench.note(
                f"query data set: {built[0].tile_users:,} people through the ingestion service "
                f"in {built[0].load_seconds:.0f} s, replicated ×{built[0].copies} by relabelling "
                f"in {built[0].clone_seconds:.0f} s (bench/dataset.py); PostgreSQL gets the same "
                "rows by COPY"
            )

    if not await bench.stage("data set", build):
        return
    data = built[0]
    urls = {"sqlite": data.sqlite_url}
    if "postgresql" in dialects:

        async def copy() -> None:
            urls["postgresql"] = await databases.postgresql("dataset")
            seconds = await datasets.copy_to_postgres(data, urls["postgresql"], bench.say)
            results["dataset"]["postgres_copy_seconds"] = round(seconds, 1)

        await bench.stage("copy to PostgreSQL", copy)
    if "citus" in dialects:

        async def copy_citus() -> None:
            urls["citus"] = await databases.citus("dataset")
            seconds = await datasets.copy_to_postgres(data, urls["citus"], bench.say)
            results["dataset"]["citus_copy_seconds"] = round(seconds, 1)

        await bench.stage("copy to Citus", copy_citus)
    for dialect, url in urls.items():

        async def measure(dialect: str = dialect, url: str = url) -> None:
            bench.say(f"queries on {dialect}")
            log = databases.directory / f"server-{dialect}-queries.log"
            async with ServerProcess(url, log) as server:
                results["queries"][dialect] = await queries.measure(
                    server.url,
                    data.timeline_user,
                    runs=args.runs,
                    max_seconds=args.max_shape_seconds,
                )
                results["query_server_peak_rss_mb"][dialect] = server.peak_rss_mb
            results["statements"][dialect] = await queries.statement_counts(url, data.timeline_user)
            saved, inline = (
                results["queries"][dialect][key]["p50_ms"] for key in queries.SEGMENT_PAIR
            )
            results["segment_ratio_p50"][dialect] = round(saved / inline, 3)

        await bench.stage(f"queries on {dialect}", measure)
    for dialect, url in urls.items():

        async def export(dialect: str = dialect, url: str = url) -> None:
            bench.say(f"export of every user on {dialect}")
            log = databases.directory / f"server-{dialect}-export.log"
            results["export"][dialect] = await exports.measure(url, log)

        await bench.stage(f"export on {dialect}", export)
    if args.no_peer:
        results["peer"]["postgraphile"] = {"skipped": "--no-peer"}
    elif "postgresql" not in urls:
        results["peer"]["postgraphile"] = {"skipped": "needs PostgreSQL"}
    else:
        await bench.stage("PostGraphile", lambda: _peer(bench, databases, urls["postgresql"], data))
    for dialect, url in urls.items():  # last: it stores events of users of its own

        async def stream(dialect: str = dialect, url: str = url) -> None:
            bench.say(f"live events on {dialect}")
            log = databases.directory / f"server-{dialect}-live.log"
            results["live"][dialect] = await live.measure(
                url, log, events=args.live_events, flood_batches=args.live_flood_batches
            )

        await bench.stage(f"live events on {dialect}", stream)


async def _peer(bench: Run, databases: Databases, url: str, data: datasets.Dataset) -> None:
    results, args = bench.results, bench.args
    bench.say("PostGraphile 4: installing into bench/.node if needed")
    problem = await asyncio.to_thread(peer.install)
    if problem:
        results["peer"]["postgraphile"] = {"skipped": problem}
        bench.note(f"PostGraphile skipped: {problem}")
        return
    await peer.add_smart_comments(url)
    nested = next(shape for shape in queries.SHAPES if shape.key == "nested")
    directory = databases.directory
    async with (
        peer.PostGraphile(url, directory / "postgraphile.log") as running,
        ServerProcess(url, directory / "server-postgresql-peer.log") as server,
        httpx.AsyncClient(base_url=running.url, timeout=300) as theirs,
        httpx.AsyncClient(base_url=server.url, timeout=300) as ours,
    ):
        bench.say("PostGraphile 4 and Usertrail: the nested query, one request of each in turn")
        query = await peer.nested_query(theirs)
        first = nested.pages[1]  # the page size of the nested shape's own runs
        usertrail, figure = await queries.latencies(
            [
                (ours, nested.query, nested.variables(first, data.timeline_user), nested.returned),
                (
                    theirs,
                    query,
                    {"first": first, "environment": data.environment_id},
                    peer.nested_returned,
                ),
            ],
            runs=args.runs,
            max_seconds=args.max_shape_seconds,
        )
    results["peer"]["postgraphile"] = figure
    results["peer"]["usertrail_in_turn"] = usertrail  # measured beside PostGraphile's runs
    results["peer"]["ratio_p50"] = round(usertrail["p50_ms"] / figure["p50_ms"], 2)


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the table; 1 when a stage failed."""
    args = _settings(argv)
    console = Console(stderr=True)
    results = asyncio.run(run(args, console))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    out = Console(width=None if sys.stdout.isatty() else 180)
    out.print(build_table(results))
    if "citus" in results.get("machine", {}):
        out.print(citus_table(results))
    out.print(f"figures written to {args.output} ({results['seconds']:.0f} s)")
    if results["errors"]:
        out.print("[red]errors:[/]\n" + "\n".join(results["errors"]), highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
