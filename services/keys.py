"""API keys: created once (shown once), stored hashed, scoped, revocable.

Scopes: `ingest` may send data (ingestion mutations, Heap and Segment routes); `read` may
query; `admin` may do everything, including defining events, segments and deleting users.
A key is `utk_` and 256 random bits; only its SHA-256 is stored (a slow hash buys nothing
for secrets that cannot be guessed), with its first characters to tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models.api_key import ApiKey
from models.db import Database
from services import environments
from services.clock import now_us
from services.errors import InvalidInput, NotFound

T = ApiKey.__table__
SCOPES = ("ingest", "read", "admin")
PREFIX = "utk_"
SHOWN_PREFIX = 12  # characters of the key kept in clear for listings (`utk_` and 8 more)
MAX_LABEL = 255
# What each scope grants; admin grants everything.
GRANTS = {"ingest": {"ingest"}, "read": {"read"}, "admin": {"ingest", "read", "admin"}}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: an environment and the scope of the key that named it."""

    environment_id: int
    scope: str

    def may(self, needed: str) -> bool:
        """True when this principal's scope grants `needed`."""
        return needed in GRANTS.get(self.scope, ())


def digest(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create(
    db: Database, *, environment: str, scope: str, label: str | None = None
) -> tuple[Any, str]:
    """A new key for the environment named `environment`: (its row, the key itself)."""
    if scope not in SCOPES:
        raise InvalidInput(
            f"scope must be one of {', '.join(SCOPES)}", field="scope", code="INVALID_SCOPE"
        )
    if label is not None and len(label) > MAX_LABEL:
        raise InvalidInput(
            f"a label holds at most {MAX_LABEL} characters", field="label", code="INVALID_LABEL"
        )
    key = PREFIX + secrets.token_urlsafe(32)  # 256 random bits

    async def work(conn: AsyncConnection) -> Any:
        found = await environments.get_by_name(conn, name=environment)
        if found is None:
            raise NotFound(
                f"no environment named {environment!r}", field="env", code="UNKNOWN_ENVIRONMENT"
            )
        result = await conn.execute(
            insert(T)
            .values(
                environment_id=found.id,
                scope=scope,
                key_hash=digest(key),
                prefix=key[:SHOWN_PREFIX],
                label=label,
                created_us=now_us(),
            )
            .returning(T.c.id)
        )
        return (await conn.execute(select(T).where(T.c.id == result.scalar_one()))).one()

    return await db.write(work), key


async def list_(conn: AsyncConnection) -> list[Any]:
    """Every key (without secrets) with its environment's name, oldest first."""
    environment = environments.T
    rows = await conn.execute(
        select(T, environment.c.name.label("environment"))
        .join(environment, environment.c.id == T.c.environment_id)
        .order_by(T.c.id)
    )
    return list(rows)


async def revoke(db: Database, *, key_id: int) -> None:
    """Revoke a key by id; it stops working at once."""

    async def work(conn: AsyncConnection) -> None:
        result = await conn.execute(
            update(T).where(T.c.id == key_id, T.c.revoked_us.is_(None)).values(revoked_us=now_us())
        )
        if result.rowcount == 0:
            raise NotFound(f"no active key with id {key_id}", field="id", code="UNKNOWN_KEY")

    await db.write(work)


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    """The principal of an active key, or None for an unknown or revoked one."""
    if not key.startswith(PREFIX) or len(key) > 128:
        return None
    row = (
        await conn.execute(
            select(T.c.environment_id, T.c.scope).where(
                T.c.key_hash == digest(key), T.c.revoked_us.is_(None)
            )
        )
    ).first()
    return Principal(row.environment_id, row.scope) if row is not None else None
