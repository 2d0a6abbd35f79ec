"""Environments: every row belongs to one; the request decides which."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Environment
from models.db import Database
from services.clock import now_us

T = Environment.__table__
DEFAULT_NAME = "default"


async def get_by_name(conn: AsyncConnection, *, name: str) -> Any:
    """The environment row called `name`, or None."""
    return (await conn.execute(select(T).where(T.c.name == name))).first()


async def get_by_app_id(conn: AsyncConnection, *, app_id: str) -> Any:
    """The environment row whose public app id is `app_id`, or None."""
    return (await conn.execute(select(T).where(T.c.app_id == app_id))).first()


async def create(conn: AsyncConnection, *, name: str) -> Any:
    """A new environment with a fresh random app id."""
    app_id = str(secrets.randbelow(9 * 10**9) + 10**9)  # ten digits, like Heap's
    await conn.execute(insert(T).values(name=name, app_id=app_id, created_us=now_us()))
    return await get_by_name(conn, name=name)


async def ensure(db: Database, *, name: str = DEFAULT_NAME) -> Any:
    """The environment called `name`, created if missing (dev mode's `default`)."""
    async with db.read() as conn:
        found = await get_by_name(conn, name=name)
    if found is not None:
        return found

    async def work(conn: AsyncConnection) -> Any:
        return await get_by_name(conn, name=name) or await create(conn, name=name)

    return await db.write(work)
