"""`usertrail env …` and `usertrail key …`: environments and API keys from the command line.

    usertrail env create NAME     the environment's app_id alone on the last line
    usertrail env list
    usertrail key create --env NAME --scope ingest|read|admin [--label LABEL]
                                  the key alone on the last line (it is never shown again)
    usertrail key list
    usertrail key revoke ID

Each command migrates the database first and takes --database-url (default:
$USERTRAIL_DATABASE_URL). Scripts read the last line: `KEY=$(usertrail key create … | tail -1)`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from server.settings import Settings
from services import environments, keys
from services.clock import to_datetime
from services.errors import Conflict, InvalidInput, UsertrailError

COMMANDS = ("env", "key")
MAX_NAME = 255


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $USERTRAIL_DATABASE_URL "
        "or sqlite+aiosqlite:///usertrail.db)",
    )


def add_commands(subparsers: Any) -> None:
    """Add `env` and `key` to the `usertrail` command's subparsers."""
    env = subparsers.add_parser("env", help="environments: env create NAME, env list")
    env_commands = env.add_subparsers(dest="action", required=True)
    create = env_commands.add_parser(
        "create", help="create an environment; prints its app_id on the last line"
    )
    create.add_argument("name", help="a unique name, e.g. production")
    _database_flag(create)
    _database_flag(env_commands.add_parser("list", help="list environments and their app ids"))

    key = subparsers.add_parser("key", help="API keys: key create, key list, key revoke ID")
    key_commands = key.add_subparsers(dest="action", required=True)
    create = key_commands.add_parser(
        "create", help="create an API key, printed once on the last line"
    )
    create.add_argument("--env", required=True, help="the environment's name")
    create.add_argument(
        "--scope",
        required=True,
        choices=keys.SCOPES,
        help="ingest: send data; read: query; admin: everything",
    )
    create.add_argument("--label", help="a note saying who or what uses the key")
    _database_flag(create)
    _database_flag(key_commands.add_parser("list", help="list keys (never the secrets)"))
    revoke = key_commands.add_parser("revoke", help="revoke a key: it stops working at once")
    revoke.add_argument("id", type=int, help="the key's id (see key list)")
    _database_flag(revoke)


def run(args: argparse.Namespace) -> int:
    """Run an `env` or `key` command; the process exit status."""
    database_url = Settings.from_env().with_overrides(database_url=args.database_url).database_url
    command = ACTIONS[(args.command, args.action)]
    from models.migrate import upgrade

    upgrade(database_url)
    try:
        lines = asyncio.run(_with_database(database_url, lambda db: command(db, args)))
    except UsertrailError as error:
        print(f"usertrail {args.command} {args.action}: {error.message}", file=sys.stderr)
        return 1
    print("\n".join(lines), flush=True)
    return 0


async def _with_database(url: str, work: Callable[[Database], Awaitable[list[str]]]) -> list[str]:
    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


def _when(micros: int | None) -> str:
    return to_datetime(micros).strftime("%Y-%m-%d %H:%M:%SZ") if micros is not None else "-"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


async def create_environment(db: Database, args: argparse.Namespace) -> list[str]:
    name = args.name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"the name must be 1 to {MAX_NAME} characters", field="name")

    async def work(conn: AsyncConnection) -> Any:
        if await environments.get_by_name(conn, name=name) is not None:
            raise Conflict(f"an environment named {name!r} exists already", field="name")
        return await environments.create(conn, name=name)

    created = await db.write(work)
    return [
        f"Created environment {created.name!r} (id {created.id}). Its app_id (public: Heap "
        "clients send it as app_id; API keys are made with `usertrail key create`):",
        created.app_id,
    ]


async def list_environments(db: Database, args: argparse.Namespace) -> list[str]:
    async with db.read() as conn:
        rows = (await conn.execute(environments.T.select().order_by(environments.T.c.id))).all()
    if not rows:
        return ["No environments."]
    return _table(
        ("id", "name", "app_id", "created"),
        [(str(r.id), r.name, r.app_id, _when(r.created_us)) for r in rows],
    )


async def create_key(db: Database, args: argparse.Namespace) -> list[str]:
    row, key = await keys.create(db, environment=args.env, scope=args.scope, label=args.label)
    return [
        f"Created {row.scope} key {row.id} ({row.prefix}…) for environment {args.env!r}. "
        "Store it now: only its hash is kept, it is never shown again.",
        key,
    ]


async def list_keys(db: Database, args: argparse.Namespace) -> list[str]:
    async with db.read() as conn:
        rows = await keys.list_(conn)
    if not rows:
        return ["No API keys."]
    return _table(
        ("id", "environment", "scope", "key", "label", "created", "revoked"),
        [
            (
                str(r.id),
                r.environment,
                r.scope,
                f"{r.prefix}…",
                r.label or "",
                _when(r.created_us),
                _when(r.revoked_us),
            )
            for r in rows
        ],
    )


async def revoke_key(db: Database, args: argparse.Namespace) -> list[str]:
    await keys.revoke(db, key_id=args.id)
    return [f"Revoked key {args.id}: requests with it are refused from now on."]


ACTIONS: dict[tuple[str, str], Callable[[Database, argparse.Namespace], Awaitable[list[str]]]] = {
    ("env", "create"): create_environment,
    ("env", "list"): list_environments,
    ("key", "create"): create_key,
    ("key", "list"): list_keys,
    ("key", "revoke"): revoke_key,
}


def main(argv: list[str] | None = None) -> int:
    """`python -m server.admin_cli env create NAME` etc., until server/cli.py adds them."""
    parser = argparse.ArgumentParser(
        prog="usertrail", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
