"""How a user presents: display name and the full property map (SPEC §7); erasing one and
merging two by hand (through services/identity.py's one merge)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import identity as identities
from services import ids, limits
from services.clock import now_us, to_datetime
from services.errors import Conflict, InvalidInput, NotFound
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


def user_key(value: Any, field: str) -> UserKey:
    """The key of the user an id names: a global User id, or a userId (a whole number)."""
    decoded = ids.decode(str(value), "User")
    if decoded is not None and len(decoded[1]) == 1:
        return UserKey("user_id", str(decoded[1][0]))
    try:
        return UserKey("user_id", str(limits.user_id(value, field)))
    except InvalidInput:
        raise InvalidInput(
            f"{str(value)!r:.60} is neither a User id nor a userId (a whole number)",
            field=field,
            code="INVALID_USER_ID",
        ) from None


async def merge_users(
    db: Database, *, environment_id: int, into: Any, from_: Any
) -> identities.Identified:
    """Merge the user `from_` names into the one `into` names, as identify merges (SPEC §1):
    the same merge, with the same projections. Ids route as everywhere (a userId merged away
    names its survivor); when both name one user already, that user is the answer (merged
    false). Refused: one id twice, an unknown user, two identified users."""
    target_key, source_key = user_key(into, "into"), user_key(from_, "from")
    if target_key == source_key:
        raise InvalidInput(
            "`into` and `from` name the same user: a user cannot be merged into itself",
            field="from",
            code="SAME_USER",
        )
    moment = now_us()

    async def work(conn: AsyncConnection) -> identities.Identified:
        routes = await identities.resolve(
            conn,
            environment_id=environment_id,
            keys=[target_key, source_key],
            now_us=moment,
            create=False,
        )
        for field, key in (("into", target_key), ("from", source_key)):
            if key not in routes:
                raise NotFound(
                    f"no user with userId {key.value} in this environment",
                    field=field,
                    code="UNKNOWN_USER",
                )
        target_id, source_id = routes[target_key], routes[source_key]
        if target_id == source_id:
            return identities.Identified(target_id, merged=False)
        found = await identities.identities_of(
            conn, environment_id=environment_id, user_ids=[target_id, source_id]
        )
        if found[target_id] is not None and found[source_id] is not None:
            raise Conflict(
                f"both users are identified ({found[target_id]!r} and {found[source_id]!r}): "
                "identified users are never merged (SPEC §1, ALREADY_IDENTIFIED); an anonymous "
                "user can be merged into either",
                field="from",
                code="ALREADY_IDENTIFIED",
            )
        await identities.merge(
            conn,
            environment_id=environment_id,
            source_id=source_id,
            target_id=target_id,
            now_us=moment,
            followers=PROJECTIONS,
        )
        return identities.Identified(target_id, merged=True)

    return await db.write(work)
