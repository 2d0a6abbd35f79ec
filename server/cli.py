"""The `usertrail` command: serve, migrate, export-schema."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from server.settings import Settings, is_loopback


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $USERTRAIL_DATABASE_URL "
        "or sqlite+aiosqlite:///usertrail.db)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usertrail", description=__doc__)
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
    _database_flag(serve)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    _database_flag(migrate)
    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
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
    settings = settings.with_overrides(
        host=args.host, port=args.port, dev=args.dev, workers=args.workers
    )
    if settings.dev and not is_loopback(settings.host):
        print(
            f"refusing to serve --dev on {settings.host}: dev mode has no API keys and "
            "binds only to loopback (127.0.0.1, ::1, localhost)",
            file=sys.stderr,
        )
        return 2
    return serve(settings)


def serve(settings: Settings) -> int:
    """Migrate, then run uvicorn with `settings`."""
    import uvicorn

    from models.migrate import upgrade

    upgrade(settings.database_url)
    os.environ.update(settings.as_env())
    if settings.dev:
        print(
            f"Usertrail (dev mode) — GraphiQL at http://{settings.host}:{settings.port}/graphql",
            flush=True,
        )
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
