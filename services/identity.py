"""Who data belongs to (SPEC §1): routing external keys to users, identify, merge, properties.

The core: it imports no feature. Data derived from events follows a merge through the
`Followers` the caller passes (services/projections.py), never through an import here.

Length: routing, identify, merge and user properties share the alias and lock
statements; splitting them would split those statements' one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from sqlalchemy import bindparam, case, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, IdempotencyKey, User, UserAlias
from models.distribution import move_user_rows
from services import locks
from services.clock import random_user_id
from services.errors import Conflict, InvalidInput, NotFound
from services.limits import merged_user_properties, stored_user_properties
from services.sql import chunks, insert_ignoring_duplicates, keys_in

U = User.__table__
A = UserAlias.__table__
E = Event.__table__
K = IdempotencyKey.__table__
# The core's tables holding rows of one user (`erase` empties them; derived tables, like
# sessions, are emptied by their projections).
USER_TABLES = [E, A, K, U]


@dataclass(frozen=True, slots=True, order=True)
class UserKey:
    """An external reference to a user: kind is user_id, identity or anonymous_id."""

    kind: str
    value: str

    @property
    def kind_field(self) -> str:
        """The input field that names this kind of key."""
        return {"user_id": "userId", "identity": "identity"}.get(self.kind, "anonymousId")


@dataclass(frozen=True, slots=True)
class Identified:
    user_id: int
    merged: bool


@dataclass(slots=True)
class Merge:
    """A merge of the anonymous user `source_id` into `target_id`, as its followers see it."""

    environment_id: int
    source_id: int
    target_id: int
    now_us: int
    # What a follower reads before the rows move and needs after, by the follower's name.
    carried: dict[str, Any] = field(default_factory=dict)


class Followers(Protocol):
    """What keeps derived data right through a merge (services/projections.py's registry)."""

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Run while the source's events, keys and aliases are still the source's."""

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Run once they are the target's and the source user is gone."""

    async def before_change(
        self, conn: AsyncConnection, *, environment_id: int, user_ids: list[int], now_us: int
    ) -> None:
        """Run before users' identity or properties change (callers of `give_identities`
        and `set_properties_many` call it too)."""


async def resolve(
    conn: AsyncConnection,
    *,
    environment_id: int,
    keys: Iterable[UserKey],
    now_us: int,
    create: bool | set[UserKey] = True,
) -> dict[UserKey, int]:
    """The user each key routes to, creating users for unknown keys (all, or those in `create`).

    Locks the keys, then the users (see services/locks.py); re-reads the routes after the
    user locks so that a merge that committed in between is seen.
    """
    wanted = set(keys)
    await locks.lock(conn, [locks.key_lock(environment_id, k.kind, k.value) for k in wanted])
    routes = await _routes(conn, environment_id, wanted)
    creatable = wanted if create is True else (create or set())
    routes |= await _create_users(conn, environment_id, creatable - routes.keys(), now_us)
    locked: set[int] = set()
    while conn.dialect.name == "postgresql" and set(routes.values()) - locked:
        locked |= set(routes.values())
        await locks.lock(conn, [locks.user_lock(environment_id, u) for u in locked])
        routes = await _routes(conn, environment_id, wanted)
    return routes


async def _routes(
    conn: AsyncConnection, environment_id: int, keys: set[UserKey]
) -> dict[UserKey, int]:
    if not keys:
        return {}
    routes: dict[UserKey, int] = {}
    by_kind: dict[str, list[str]] = {}
    for key in keys:
        by_kind.setdefault(key.kind, []).append(key.value)
    for kind, values in by_kind.items():  # one IN list per kind: seeks (env, kind, alias)
        for chunk in chunks(values):
            rows = await conn.execute(
                _ALIASES, {"env": environment_id, "kind": kind, "aliases": list(chunk)}
            )
            routes.update({UserKey(kind, alias): user for alias, user in rows})
    plain = {int(k.value): k for k in keys if k.kind == "user_id" and k not in routes}
    for user_chunk in chunks(list(plain)):
        users = await conn.execute(_USERS_IN, {"env": environment_id, "users": list(user_chunk)})
        routes.update({plain[user]: user for (user,) in users})
    return routes


_ALIASES = select(A.c.alias, A.c.user_id).where(
    A.c.environment_id == bindparam("env"),
    A.c.kind == bindparam("kind"),
    A.c.alias.in_(bindparam("aliases", expanding=True)),
)
_USERS_IN = select(U.c.user_id).where(
    U.c.environment_id == bindparam("env"), U.c.user_id.in_(bindparam("users", expanding=True))
)


async def _create_users(
    conn: AsyncConnection, environment_id: int, keys: set[UserKey], now_us: int
) -> dict[UserKey, int]:
    """Create a user per key in a few statements: userId keys keep their id, others get a
    fresh random one (redrawn on the rare collision) and an alias routing the key to it."""
    if not keys:
        return {}
    planned = {k: int(k.value) if k.kind == "user_id" else random_user_id() for k in keys}
    pending = dict(planned)
    statement = insert_ignoring_duplicates(conn, U, ["environment_id", "user_id"]).returning(
        U.c.user_id
    )
    while pending:
        rows = [
            _new_user(
                environment_id, user_id, now_us, key.value if key.kind == "identity" else None
            )
            for key, user_id in pending.items()
        ]
        inserted = set((await conn.execute(statement, rows)).scalars())
        # A userId key whose row exists now was created concurrently: it routes there anyway.
        pending = {
            k: random_user_id()
            for k, user_id in pending.items()
            if user_id not in inserted and k.kind != "user_id"
        }
        planned.update(pending)
    await add_aliases(
        conn,
        environment_id=environment_id,
        routes={k: u for k, u in planned.items() if k.kind != "user_id"},
    )
    return planned


async def add_aliases(
    conn: AsyncConnection, *, environment_id: int, routes: Mapping[UserKey, int]
) -> None:
    """Route each key (identity, anonymous id, merged userId) to its user, in one statement."""
    if routes:
        await conn.execute(
            insert(A),
            [
                {"environment_id": environment_id, "kind": k.kind, "alias": k.value, "user_id": u}
                for k, u in routes.items()
            ],
        )


def _new_user(
    environment_id: int, user_id: int, now_us: int, identity: str | None
) -> dict[str, Any]:
    return {
        "environment_id": environment_id,
        "user_id": user_id,
        "identity": identity,
        "email": None,
        "properties": {},
        "autocaptured": {},
        "first_seen_us": now_us,
        "last_seen_us": now_us,
        "created_us": now_us,
        "activity_us": now_us,
        "has_events": False,
    }


async def identify(
    conn: AsyncConnection,
    *,
    environment_id: int,
    user_id: int,
    identity: str,
    now_us: int,
    followers: Followers,
) -> Identified:
    """Give the (resolved, locked) user `user_id` an identity, merging it where SPEC §1 says."""
    user = await get(conn, environment_id=environment_id, user_id=user_id)
    if user is None:
        raise NotFound(f"no user with userId {user_id}", field="userId", code="UNKNOWN_USER")
    if user.identity == identity:
        return Identified(user_id, merged=False)
    if user.identity is not None:
        raise Conflict(
            f"user {user_id} is already identified as {user.identity!r}",
            field="identity",
            code="ALREADY_IDENTIFIED",
        )
    key = UserKey("identity", identity)
    routes = await resolve(
        conn, environment_id=environment_id, keys=[key], now_us=now_us, create=False
    )
    owner = routes.get(key)
    if owner is None:
        await followers.before_change(
            conn, environment_id=environment_id, user_ids=[user_id], now_us=now_us
        )
        await give_identities(conn, environment_id=environment_id, identities={user_id: identity})
        return Identified(user_id, merged=False)
    await merge(
        conn,
        environment_id=environment_id,
        source_id=user_id,
        target_id=owner,
        now_us=now_us,
        followers=followers,
    )
    return Identified(owner, merged=True)


async def identities_of(
    conn: AsyncConnection, *, environment_id: int, user_ids: Iterable[int]
) -> dict[int, str | None]:
    """The identity (or None) of each existing user among `user_ids`."""
    found: dict[int, str | None] = {}
    for chunk in chunks(sorted(set(user_ids)), 400):
        rows = await conn.execute(
            select(U.c.user_id, U.c.identity).where(
                U.c.environment_id == environment_id, U.c.user_id.in_(chunk)
            )
        )
        found.update({row.user_id: row.identity for row in rows})
    return found


async def give_identities(
    conn: AsyncConnection, *, environment_id: int, identities: Mapping[int, str]
) -> None:
    """`identify` for many users at once, where it needs no merge: each (resolved, locked)
    user has no identity yet and each (locked) identity routes nowhere, as the caller checked.
    """
    if not identities:
        return
    await add_aliases(
        conn,
        environment_id=environment_id,
        routes={UserKey("identity", who): user for user, who in identities.items()},
    )
    await conn.execute(
        update(U)
        .where(U.c.environment_id == environment_id, U.c.user_id == bindparam("b_user"))
        .values(identity=bindparam("b_identity")),
        [{"b_user": user, "b_identity": who} for user, who in identities.items()],
    )


async def merge(
    conn: AsyncConnection,
    *,
    environment_id: int,
    source_id: int,
    target_id: int,
    now_us: int,
    followers: Followers,
) -> None:
    """Move everything of the user `source_id` into `target_id` (both locked): the core rows
    here, derived data through `followers` (before the move, and after it).

    Identify merges an anonymous user; a merge by hand (services/users.merge_users) may merge
    an identified one into an anonymous one, whose identity (alias and column) it then takes.
    """
    source = await get(conn, environment_id=environment_id, user_id=source_id)
    target = await get(conn, environment_id=environment_id, user_id=target_id)
    assert source is not None and target is not None
    merge = Merge(environment_id, source_id, target_id, now_us)
    await followers.before_merge(conn, merge)
    # Events change user_id, Citus's distribution column: moved (copy, delete). Keys and
    # aliases are distributed by their own key: their user_id is a plain column.
    await move_user_rows(
        conn, E, environment_id=environment_id, source_id=source_id, target_id=target_id
    )
    for table in (K, A):
        await conn.execute(
            update(table)
            .where(table.c.environment_id == environment_id, table.c.user_id == source_id)
            .values(user_id=target_id)
        )
    await add_aliases(
        conn, environment_id=environment_id, routes={UserKey("user_id", str(source_id)): target_id}
    )
    seen = [s for s in (source, target) if s.has_events] or [target]
    last_seen = max(s.last_seen_us for s in seen)
    await conn.execute(
        update(U)
        .where(U.c.environment_id == environment_id, U.c.user_id == target_id)
        .values(
            properties=merged_user_properties(target.properties, source.properties),
            identity=target.identity or source.identity,
            email=target.email or source.email,
            first_seen_us=min(s.first_seen_us for s in seen),
            last_seen_us=last_seen,
            activity_us=target.activity_us if last_seen == target.last_seen_us else now_us,
            has_events=source.has_events or target.has_events,
        )
    )
    await conn.execute(
        delete(U).where(U.c.environment_id == environment_id, U.c.user_id == source_id)
    )
    await followers.on_merge(conn, merge)


async def get(conn: AsyncConnection, *, environment_id: int, user_id: int) -> Any:
    """The user row, or None."""
    result = await conn.execute(
        select(U).where(U.c.environment_id == environment_id, U.c.user_id == user_id)
    )
    return result.first()


async def note_activity(
    conn: AsyncConnection,
    *,
    environment_id: int,
    spans: Mapping[int, tuple[int, int]],
    received_us: int,
) -> None:
    """Widen each user's first/last seen to include the span (earliest, latest) of new events."""
    await update_users(
        conn,
        _NOTE_ACTIVITY,
        environment_id=environment_id,
        rows=[{"user_id": u, "first": lo, "last": hi} for u, (lo, hi) in spans.items()],
        now=received_us,
    )


async def update_users(
    conn: AsyncConnection,
    statements: tuple[Any, Any],
    *,
    environment_id: int,
    rows: list[dict[str, Any]],
    **shared: Any,
) -> None:
    """One UPDATE of users applied to many users, `rows` of user_id and values (`shared`:
    values for all). PostgreSQL runs an executemany row by row: there the rows go as one JSON
    record set joined to users (the second statement, named parameters); SQLite runs the
    executemany of the first (`b_`-prefixed parameters)."""
    if not rows:
        return
    each, joined = statements
    common = {"env": environment_id, **shared}
    if conn.dialect.name == "postgresql":
        # The ids again as an array: on Citus they prune the UPDATE to these users' shards
        # (a router query for one user) instead of joining the record set on every shard.
        users = [row["user_id"] for row in rows]
        await conn.execute(joined, common | {"rows": orjson.dumps(rows).decode(), "users": users})
        return
    await conn.execute(
        each, [{f"b_{name}": value for name, value in (common | row).items()} for row in rows]
    )


ONE_USER = (U.c.environment_id == bindparam("b_env"), U.c.user_id == bindparam("b_user_id"))

# Built once (the same for every batch): per user for SQLite, joined for PostgreSQL.
_NOTE_ACTIVITY = (
    (
        update(U)
        .where(*ONE_USER)
        .values(
            first_seen_us=case(
                (U.c.has_events & (U.c.first_seen_us < bindparam("b_first")), U.c.first_seen_us),
                else_=bindparam("b_first"),
            ),
            last_seen_us=case(
                (U.c.has_events & (U.c.last_seen_us > bindparam("b_last")), U.c.last_seen_us),
                else_=bindparam("b_last"),
            ),
            activity_us=case(
                (U.c.has_events & (U.c.last_seen_us >= bindparam("b_last")), U.c.activity_us),
                else_=bindparam("b_now"),
            ),
            has_events=True,
        )
    ),
    text(
        """UPDATE users AS u SET
  first_seen_us = CASE WHEN u.has_events AND u.first_seen_us < v.first
    THEN u.first_seen_us ELSE v.first END,
  last_seen_us = CASE WHEN u.has_events AND u.last_seen_us > v.last
    THEN u.last_seen_us ELSE v.last END,
  activity_us = CASE WHEN u.has_events AND u.last_seen_us >= v.last
    THEN u.activity_us ELSE :now END,
  has_events = true
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(user_id bigint, first bigint, last bigint)
WHERE u.environment_id = :env AND u.user_id = v.user_id
  AND u.user_id = ANY(CAST(:users AS bigint[]))"""
    ),
)


async def set_properties(
    conn: AsyncConnection, *, environment_id: int, user_id: int, properties: Mapping[str, Any]
) -> None:
    """Overwrite the given properties of a (resolved, locked) user; `email` sets Email.
    InvalidInput when the user would exceed the property limits (nothing is changed)."""
    [refused] = await set_properties_many(
        conn, environment_id=environment_id, updates=[(user_id, properties)]
    )
    if refused is not None:
        raise refused


async def set_properties_many(
    conn: AsyncConnection,
    *,
    environment_id: int,
    updates: Sequence[tuple[int, Mapping[str, Any]]],
) -> list[InvalidInput | None]:
    """Apply property updates to (resolved, locked) users, in order, in a few statements.

    An update that would take its user over the property limits (services/limits.py) is
    skipped: its error is returned in its place, None for each update applied.
    """
    users = {u for u, _ in updates}
    current: dict[int, tuple[dict[str, Any], str | None]] = {}
    for chunk in chunks(sorted(users)):
        rows = await conn.execute(
            select(U.c.user_id, U.c.properties, U.c.email).where(
                U.c.environment_id == environment_id, U.c.user_id.in_(chunk)
            )
        )
        current.update({r.user_id: (dict(r.properties), r.email) for r in rows})
    refused: list[InvalidInput | None] = []
    for user_id, properties in updates:
        custom, email = current[user_id]
        changes: dict[str, Any] = {}
        for key, value in properties.items():
            if key.lower() == "email":
                email = str(value)
            else:
                changes[key] = value
        try:
            current[user_id] = (stored_user_properties(custom, changes), email)
            refused.append(None)
        except InvalidInput as error:
            refused.append(error)
    await conn.execute(
        update(U)
        .where(U.c.environment_id == environment_id, U.c.user_id == bindparam("b_user"))
        .values(properties=bindparam("b_properties"), email=bindparam("b_email")),
        [
            {"b_user": u, "b_properties": custom, "b_email": email}
            for u, (custom, email) in current.items()
        ],
    )
    return refused


async def resolve_existing(
    conn: AsyncConnection, *, environment_id: int, key: UserKey
) -> int | None:
    """The user a key routes to, without locking or creating anything (for reads)."""
    return (await _routes(conn, environment_id, {key})).get(key)


async def find_users(
    conn: AsyncConnection, *, environment_id: int, keys: Sequence[UserKey]
) -> dict[UserKey, Any]:
    """The user row each key routes to (for reads): aliases first, so a userId merged away
    finds the user it was merged into, then the users, by id. Two statements (per 5,000 keys).

    Not a join of aliases and users: on Citus they are distributed by different columns
    (alias, user_id), and a join of the two would need a repartition.
    """
    routes: dict[UserKey, int] = {}
    wanted = list(set(keys))
    for chunk in chunks(wanted):
        rows = await conn.execute(
            select(A.c.kind, A.c.alias, A.c.user_id).where(
                A.c.environment_id == environment_id,
                keys_in((A.c.kind, A.c.alias), [(k.kind, k.value) for k in chunk]),
            )
        )
        routes.update({UserKey(kind, alias): user for kind, alias, user in rows})
    for key in wanted:
        if key.kind == "user_id" and key not in routes:
            routes[key] = int(key.value)
    users: dict[int, Any] = {}
    for user_chunk in chunks(list(set(routes.values()))):
        rows = await conn.execute(
            select(U).where(U.c.environment_id == environment_id, U.c.user_id.in_(user_chunk))
        )
        users.update({row.user_id: row for row in rows})
    return {key: users[user] for key, user in routes.items() if user in users}


async def erase(conn: AsyncConnection, *, environment_id: int, user_id: int) -> None:
    """Erase a (resolved, locked) user's events, aliases, idempotency keys and row (GDPR)."""
    for table in USER_TABLES:
        await conn.execute(
            delete(table).where(
                table.c.environment_id == environment_id, table.c.user_id == user_id
            )
        )
