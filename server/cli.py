"""The `usertrail` command: serve the API, load demo data, migrate, manage environments and keys."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Any

from server import admin_cli
from server.settings import SettingError, Settings, is_loopback, parse_networks, parse_origins


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $USERTRAIL_DATABASE_URL "
        "or sqlite+aiosqlite:///usertrail.db)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usertrail", description=__doc__)
    parser.add_argument(
        "--version",
        action="version",
        version=f"usertrail {importlib.metadata.version('usertrail')}",
        help="print the installed version and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the database and serve the API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    serve.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: no API key, loopback only, readable errors",
    )
    serve.add_argument(
        "--demo-if-empty",
        type=int,
        default=0,
        metavar="USERS",
        help="load a demo data set of USERS people first when the database holds no user "
        "(default 0: never)",
    )
    serve.add_argument(
        "--demo-days", type=int, default=14, help="days of demo activity (default 14)"
    )
    serve.add_argument(
        "--introspection",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="schema introspection and GraphiQL at /graphql (default: on with --dev, off "
        "without; $USERTRAIL_INTROSPECTION=1 or 0); outside dev mode only read and admin "
        "keys may introspect",
    )
    serve.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        help="comma-separated origins (or *) whose pages may call /graphql and the ingestion "
        "routes (default: $USERTRAIL_CORS_ORIGINS, else none; dev mode: loopback pages only)",
    )
    serve.add_argument(
        "--cors-ingest-origins",
        metavar="ORIGINS",
        help="origins added for /v1 and /api only (default: $USERTRAIL_CORS_INGEST_ORIGINS, "
        "else *: browser SDKs post from any site; '' for none)",
    )
    serve.add_argument(
        "--geoip-db",
        metavar="PATH",
        help="a MaxMind DB file (GeoLite2-City.mmdb) locating client events by IP address "
        "(default: $USERTRAIL_GEOIP_DB, else none: events keep the location clients send)",
    )
    serve.add_argument(
        "--trusted-proxies",
        metavar="CIDRS",
        help="comma-separated networks of the proxies whose X-Forwarded-For names the client "
        "(default: $USERTRAIL_TRUSTED_PROXIES, else none: the header is ignored)",
    )
    _database_flag(serve)
    demo = commands.add_parser(
        "demo",
        help="load demo data: people's activity until now",
        description="Migrate, then load N people's activity over D days (ending now) into the "
        "environment the dev server reads (`default`), through the ingestion service. "
        "Refuses an environment that already holds events unless --append is given.",
    )
    demo.add_argument("--users", type=int, default=1000, help="people (default 1000)")
    demo.add_argument("--days", type=int, default=14, help="days of activity (default 14)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument(
        "--environment", default="default", help="environment name (default: default)"
    )
    demo.add_argument(
        "--append",
        action="store_true",
        help="load even when the environment already holds events (the same --seed sends "
        "the same people's events again; another --seed adds other people)",
    )
    _database_flag(demo)
    migrate = commands.add_parser(
        "migrate", help="apply database migrations (serve does this on start)"
    )
    _database_flag(migrate)
    export = commands.add_parser(
        "export-schema", help="print the GraphQL schema (SDL) or write it to --output"
    )
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    admin_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `usertrail` command; its exit status."""
    args = _parser().parse_args(argv)
    if args.command in admin_cli.COMMANDS:
        return admin_cli.run(args)
    try:
        settings = Settings.from_env()
    except SettingError as error:
        print(f"usertrail: {error}", file=sys.stderr)
        return 2
    if args.command == "export-schema":
        from graph.schema import schema

        text = schema.as_str() + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    settings = settings.with_overrides(database_url=args.database_url)
    from models.migrate import upgrade

    if args.command == "migrate":
        upgrade(settings.database_url)
        print(f"migrated {settings.database_url}")
        return 0
    if args.command == "demo":
        upgrade(settings.database_url)
        stored = asyncio.run(_stored_events(settings.database_url, args.environment))
        if stored and not args.append:
            print(
                f"usertrail demo: environment {args.environment!r} already holds {stored:,} "
                "events; nothing loaded. Pass --append to add the demo data anyway (the same "
                "--seed sends the same people's events again; another --seed adds other people).",
                file=sys.stderr,
            )
            return 1
        return load_demo(
            settings.database_url,
            users=args.users,
            days=args.days,
            seed=args.seed,
            environment=args.environment,
        )
    settings = settings.with_overrides(
        host=args.host,
        port=args.port,
        dev=args.dev,
        workers=args.workers,
        introspection=args.introspection,
    )
    try:
        settings = _with_cors_flags(settings, args)
        settings = _with_location_flags(settings, args)
    except SettingError as error:
        print(f"usertrail: {error}", file=sys.stderr)
        return 2
    if settings.dev and not is_loopback(settings.host):
        print(
            f"refusing to serve --dev on {settings.host}: dev mode has no API keys and "
            "binds only to loopback (127.0.0.1, ::1, localhost)",
            file=sys.stderr,
        )
        return 2
    return serve(settings, demo_users=args.demo_if_empty, demo_days=args.demo_days)


def _with_cors_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settings with the --cors-* flags applied, checked as the app will (SettingError)."""
    from server.cross_origin import allowed_origins

    if args.cors_origins is not None:
        settings = settings.with_overrides(
            cors_origins=parse_origins(args.cors_origins, "--cors-origins")
        )
    if args.cors_ingest_origins is not None:
        settings = settings.with_overrides(
            cors_ingest_origins=parse_origins(args.cors_ingest_origins, "--cors-ingest-origins")
        )
    allowed_origins(settings)
    return settings


def _with_location_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settings with --geoip-db and --trusted-proxies applied; the GeoIP database is opened
    once here so that an unusable one stops the command before it migrates or serves."""
    from server.client_address import open_geo_database

    settings = settings.with_overrides(geoip_db=args.geoip_db)
    if args.trusted_proxies is not None:
        settings = settings.with_overrides(
            trusted_proxies=parse_networks(args.trusted_proxies, "--trusted-proxies")
        )
    geo = open_geo_database(settings)
    if geo is not None:
        geo.close()
    return settings


def serve(settings: Settings, *, demo_users: int = 0, demo_days: int = 14) -> int:
    """Migrate, load a demo data set into an empty database if asked, then run uvicorn."""
    import uvicorn

    from models.migrate import upgrade

    upgrade(settings.database_url)
    if demo_users > 0 and asyncio.run(_is_empty(settings.database_url)):
        print(
            f"Empty database: loading a demo data set ({demo_users} people over {demo_days} "
            "days) so that the first query shows data (`--demo-if-empty 0`, or `make serve "
            "DEMO=0`, skips this).",
            flush=True,
        )
        load_demo(settings.database_url, users=demo_users, days=demo_days, seed=1)
    os.environ.update(settings.as_env())
    if settings.dev:
        base = f"http://{settings.host}:{settings.port}"
        print(
            f"Usertrail (dev mode) — the Users & Sessions page at {base}/, GraphiQL at "
            f"{base}/graphql",
            flush=True,
        )
    # Structured JSON logs outside dev mode (USERTRAIL_LOG_FORMAT=json|text overrides).
    log_format = os.environ.get("USERTRAIL_LOG_FORMAT", "text" if settings.dev else "json")
    extra: dict[str, Any] = {}
    if log_format == "json":
        from server import logs

        extra["log_config"] = logs.configure()
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        timeout_graceful_shutdown=10,
        # Whose X-Forwarded-For names the client is USERTRAIL_TRUSTED_PROXIES' to say
        # (server/client_address.py); uvicorn's own handling trusts 127.0.0.1 by default.
        proxy_headers=False,
        **extra,
    )
    return 0


async def _is_empty(database_url: str) -> bool:
    from models.db import Database
    from services import demo

    db = Database(database_url)
    try:
        return await demo.is_empty(db)
    finally:
        await db.dispose()


async def _stored_events(database_url: str, environment: str) -> int:
    from models.db import Database
    from services import demo

    db = Database(database_url)
    try:
        return await demo.stored_events(db, environment=environment)
    finally:
        await db.dispose()


def load_demo(
    database_url: str, *, users: int, days: int, seed: int, environment: str = "default"
) -> int:
    """Generate the demo population and send it through the ingestion service, with progress."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from models.db import Database
    from services import demo, environments

    async def run() -> demo.LoadReport:
        db = Database(database_url)
        try:
            environment_id = (await environments.ensure(db, name=environment)).id
            columns = (
                TextColumn("[bold]demo[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("people · {task.fields[events]:,} events"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns) as progress:
                task = progress.add_task(environment, total=users, events=0)

                def advance(batch: demo.DemoBatch, report: demo.LoadReport) -> None:
                    progress.update(task, completed=report.people, events=report.events)

                batches = demo.generate(users=users, days=days, seed=seed)
                return await demo.load(
                    db, environment_id=environment_id, batches=batches, on_batch=advance
                )
        finally:
            await db.dispose()

    started = time.perf_counter()
    report = asyncio.run(run())
    print(
        f"Loaded {report.events:,} events of {report.people:,} people into environment "
        f"{environment!r} ({report.property_updates:,} with properties, {report.merges:,} "
        f"merges) in {time.perf_counter() - started:.1f} s.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
