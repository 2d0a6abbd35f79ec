"""How a user presents: display name and the full property map (SPEC §7); erasing one."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import identity as identities
from services import limits
from services.clock import now_us, to_datetime
from services.errors import NotFound
from services.identity import UserKey
from services.projections import PROJECTIONS

BUILT_IN = ("Date First Seen", "Email", "Identity", "User ID")


def display_name(user: Any) -> str:
    """Identity, else the Email property, else "User <userId>"."""
    return user.identity or user.email or f"User {user.user_id}"


def all_properties(user: Any) -> dict[str, Any]:
    """Custom properties, then the autocaptured ones (which cannot be overwritten)."""
    found: dict[str, Any] = dict(user.properties or {})
    found.update(user.autocaptured or {})
    found["Date First Seen"] = to_datetime(user.first_seen_us).isoformat()
    found["User ID"] = str(user.user_id)
    if user.email is not None:
        found["Email"] = user.email
    if user.identity is not None:
        found["Identity"] = user.identity
    return found


def autocaptured_names(user: Any) -> set[str]:
    """Names of the properties Usertrail sets itself."""
    return set(user.autocaptured or {}) | set(BUILT_IN)


def property_list(user: Any, search: str | None) -> list[tuple[str, Any, bool]]:
    """(name, value, autocaptured) sorted by name, filtered by a case-insensitive search."""
    auto = autocaptured_names(user)
    needle = search.casefold() if search else None
    listed = []
    for name, value in sorted(all_properties(user).items(), key=lambda kv: kv[0].casefold()):
        if needle and needle not in name.casefold() and needle not in str(value).casefold():
            continue
        listed.append((name, value, name in auto))
    return listed


async def delete_user(
    db: Database, *, environment_id: int, user_id: Any = None, identity: Any = None
) -> int:
    """Erase a user, its aliases, events, idempotency keys and derived data (GDPR); its id."""
    key = (
        UserKey("user_id", str(limits.user_id(user_id)))
        if user_id is not None
        else UserKey("identity", limits.identity(identity))
    )

    async def work(conn: AsyncConnection) -> int:
        routes = await identities.resolve(
            conn, environment_id=environment_id, keys=[key], now_us=now_us(), create=False
        )
        if key not in routes:
            raise NotFound("no such user", field=key.kind_field, code="UNKNOWN_USER")
        target = routes[key]
        await PROJECTIONS.on_user_deleted(conn, environment_id=environment_id, user_id=target)
        await identities.erase(conn, environment_id=environment_id, user_id=target)
        return target

    return int(await db.write(work))
