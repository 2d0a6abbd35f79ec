"""Ingestion: validate items, resolve their users, store each event once, keep sessions right.

Orchestrates identity, idempotency and the projections of derived data (sessions first) in
one write transaction per batch.
GraphQL mutations, the Heap API and the Segment API all come through here.

Length: the steps of one write transaction, each short, kept beside each other so the
order they run in reads in one place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, IdempotencyKey, User
from models.db import Database
from services import identity as identities
from services import limits, live_notify, telemetry
from services.autocapture import split_url
from services.batch_items import validated
from services.batching import GroupWriter, one_by_one
from services.clock import now_us, row_ids
from services.errors import InvalidInput, Problem, UsertrailError
from services.geolocation import Sender, located
from services.identity import UserKey
from services.limits import storable
from services.projections import PROJECTIONS, NewEvents
from services.sql import chunks, insert_ignoring_duplicates, insert_rows
from services.traits import TraitSource

E = Event.__table__
K = IdempotencyKey.__table__
U = User.__table__

URL_PROPERTIES = ("domain", "path", "query", "hash")
# Event columns holding caller text, and the input field each comes from.
STORED_TEXT = {
    "type": "event",
    "client_session_id": "sessionId",
    "idempotency_key": "idempotencyKey",
    "properties": "properties",
    "context": "context",
}
DOCUMENTS = ("properties", "context")  # the event columns holding JSON


@dataclass(slots=True)
class TrackItem:
    """One event as a caller sent it; validated by `track`."""

    event: Any
    user_id: Any = None
    identity: Any = None
    anonymous_id: str | None = None  # Segment's anonymousId, routed through an alias
    session_id: Any = None
    source: Any = "SERVER"
    timestamp: Any = None
    properties: Any = None
    context: Any = None
    idempotency_key: Any = None


@dataclass(slots=True)
class UserPropertiesItem:
    properties: Any
    user_id: Any = None
    identity: Any = None
    anonymous_id: str | None = None


@dataclass(slots=True)
class Outcome:
    """What a batch did: counts, per-item problems, and where each stored item went."""

    accepted: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    stored: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (user, event id)
    users: dict[int, int] = field(default_factory=dict)  # index -> user id


@dataclass(slots=True)
class _Valid:
    index: int
    key: UserKey
    identify_as: str | None
    row: dict[str, Any]
    traits: TraitSource | None
    documents: dict[str, str]  # the row's JSON columns as JSON text
    outcome: Outcome = field(default_factory=Outcome)  # its request's, in the write


@dataclass(slots=True)
class TrackRequest:
    """A `track` call's valid items, and what was said of the others, waiting to be written."""

    environment_id: int
    items: list[_Valid]
    repeated: int
    problems: list[Problem]
    received_us: int

    def outcome(self) -> Outcome:
        """What the call did before any item is written: repeats and refused items."""
        return Outcome(duplicates=self.repeated, problems=list(self.problems))


def anonymous_id(value: Any) -> str:
    """A Segment anonymousId: any text of 1..1024 characters that can be stored."""
    text = limits.short_text(value, "anonymousId", "INVALID_ANONYMOUS_ID", 1024)
    return storable(text, "anonymousId")


def _event_time(value: Any, received_us: int) -> int:
    try:
        return limits.timestamp(value, received_us=received_us)
    except OverflowError:  # epoch milliseconds beyond any datetime (1e306 * 1000 is inf)
        raise InvalidInput(
            "timestamp is out of range", field="timestamp", code="INVALID_TIMESTAMP"
        ) from None


def _user_key(item: TrackItem | UserPropertiesItem, *, client: bool) -> tuple[UserKey, str | None]:
    """The key that names the item's user, and an identity to identify it with, if any."""
    key, identify_as = _raw_user_key(item, client=client)
    storable(key.value, key.kind_field)
    return key, storable(identify_as, "identity")


def _raw_user_key(
    item: TrackItem | UserPropertiesItem, *, client: bool
) -> tuple[UserKey, str | None]:
    if item.anonymous_id is not None:
        who = anonymous_id(item.anonymous_id)
        also = limits.identity(item.identity) if item.identity is not None else None
        return UserKey("anonymous_id", who), also
    has_id, has_identity = item.user_id is not None, item.identity is not None
    if has_id and has_identity:
        if not client:
            raise InvalidInput(
                "give exactly one of userId or identity", field="identity", code="AMBIGUOUS_USER"
            )
        return (
            UserKey("user_id", str(limits.user_id(item.user_id))),
            limits.identity(item.identity),
        )
    if has_id:
        return UserKey("user_id", str(limits.user_id(item.user_id))), None
    if has_identity:
        return UserKey("identity", limits.identity(item.identity)), None
    raise InvalidInput("give userId or identity", field="userId", code="MISSING_USER")


def _validate_event(
    item: TrackItem, index: int, environment_id: int, received_us: int, sender: Sender | None
) -> _Valid:
    source = limits.source(item.source if item.source is not None else "SERVER")
    key, identify_as = _raw_user_key(item, client=source != "SERVER")
    properties = limits.properties(item.properties)
    context = located(source, limits.context(item.context), sender)
    _autocapture_url(properties, context)
    session_id = (
        limits.short_text(item.session_id, "sessionId", "INVALID_SESSION_ID")
        if item.session_id is not None
        else None
    )
    idempotency_key = (
        limits.short_text(item.idempotency_key, "idempotencyKey", "INVALID_IDEMPOTENCY_KEY")
        if item.idempotency_key is not None
        else None
    )
    row = {
        "environment_id": environment_id,
        "id": 0,  # drawn in the write transaction
        "type": limits.event_name(item.event),
        "time_us": _event_time(item.timestamp, received_us),
        "source": source,
        "client_session_id": session_id if source != "SERVER" else None,
        "properties": properties,
        "context": context,
        "replay": context.get("replay") is True or properties.get("replay") is True,
        "received_us": received_us,
        "idempotency_key": idempotency_key,
    }
    texts = [row[name] for name in STORED_TEXT if name not in DOCUMENTS]
    documents = _documents(row)
    if documents is None or not limits.all_storable(key.value, identify_as, *texts):
        storable(key.value, key.kind_field)  # find which one, and say so
        storable(identify_as, "identity")
        for name, field_name in STORED_TEXT.items():
            storable(row[name], field_name)
        documents = _encoded(row)
    traits = TraitSource(source, properties, context) if source != "SERVER" else None
    return _Valid(index, key, identify_as, row, traits, documents)


def _documents(row: Mapping[str, Any]) -> dict[str, str] | None:
    """The row's JSON columns encoded (once, outside the write transaction), or None when
    one may hold text that cannot be stored (see `limits.all_storable`)."""
    try:
        documents = _encoded(row)
    except orjson.JSONEncodeError:  # an unpaired surrogate
        return None
    return None if any("\\u0000" in text for text in documents.values()) else documents


def _encoded(row: Mapping[str, Any]) -> dict[str, str]:
    return {name: orjson.dumps(row[name]).decode() for name in DOCUMENTS}


def _autocapture_url(properties: dict[str, Any], context: Mapping[str, Any]) -> None:
    """context.url (and title, referrer) fill the autocaptured properties the event lacks."""
    for name, value in split_url(context.get("url")).items():
        properties.setdefault(name, value)
    for name in ("title", "referrer"):
        if context.get(name):
            properties.setdefault(name, context[name])


async def track(
    db: Database,
    *,
    environment_id: int,
    items: Sequence[TrackItem],
    received_us: int | None = None,
    field_name: str = "events",
    sender: Sender | None = None,
) -> Outcome:
    """Store a batch of events: valid items in one transaction, problems reported per index.

    `sender` locates the events by IP address (services/geolocation.py); without it they keep
    the location their context gives."""
    request = await prepare_track(
        environment_id=environment_id,
        items=items,
        received_us=received_us,
        field_name=field_name,
        sender=sender,
    )
    if request.items:
        outcome = await writer(db, environment_id).submit(
            store_track_requests, request, len(request.items)
        )
    else:
        outcome = request.outcome()
    return tracked(environment_id, outcome)


async def prepare_track(
    *,
    environment_id: int,
    items: Sequence[TrackItem],
    received_us: int | None = None,
    field_name: str = "events",
    sender: Sender | None = None,
) -> TrackRequest:
    """A `track` call validated, ready for `store_track_requests` (no database needed)."""
    limits.batch_size(len(items), field_name)
    received = received_us if received_us is not None else now_us()
    valid, problems = await validated(
        items, lambda item, index: _validate_event(item, index, environment_id, received, sender)
    )
    first_with_key: dict[str, _Valid] = {}
    unique: list[_Valid] = []
    repeated = 0
    for item in valid:
        key = item.row["idempotency_key"]
        if key is not None and key in first_with_key:
            repeated += 1
            continue
        if key is not None:
            first_with_key[key] = item
        unique.append(item)
    return TrackRequest(environment_id, unique, repeated, problems, received)


def tracked(environment_id: int, outcome: Outcome) -> Outcome:
    """A `track` call's outcome, its problems in index order, counted in the telemetry."""
    in_index_order(outcome)
    telemetry.record_ingestion(
        environment_id,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        codes=[p.code for p in outcome.problems],
    )
    return outcome


def in_index_order(outcome: Outcome) -> Outcome:
    """The outcome with its problems sorted by item index (those without one first)."""
    outcome.problems.sort(key=lambda p: p.index if p.index is not None else -1)
    return outcome


# Per database and environment: concurrent ingestion calls are written together (SQLite).
_WRITERS: WeakKeyDictionary[Database, dict[int, GroupWriter]] = WeakKeyDictionary()


def writer(db: Database, environment_id: int) -> GroupWriter:
    """The group writer of ingestion writes into this database and environment."""
    writers = _WRITERS.setdefault(db, {})
    if environment_id not in writers:
        writers[environment_id] = GroupWriter(db)
    return writers[environment_id]


async def store_track_requests(
    conn: AsyncConnection, requests: Sequence[TrackRequest]
) -> list[Outcome]:
    """Store the items of several `track` calls (of one environment) together, in the open
    write transaction; an Outcome per call."""
    environment_id = requests[0].environment_id
    outcomes: list[Outcome] = []
    items: list[_Valid] = []
    for request in requests:
        outcome = request.outcome()
        outcomes.append(outcome)
        for item in request.items:  # fresh ids per attempt: a retry after a collision draws anew
            item.row["id"] = row_ids.next()
            item.outcome = outcome
        items += request.items
    if items:
        await _store_events(conn, environment_id, items, max(r.received_us for r in requests))
    return outcomes


async def _store_events(
    conn: AsyncConnection, environment_id: int, items: list[_Valid], received_us: int
) -> None:
    """Store valid items (each counted in its `outcome`) in the open write transaction.

    The steps, in order; what is derived from events follows through the projections
    (services/projections.py), each step one statement (or a few) for the whole batch.
    """
    routes = await _route_users(conn, environment_id, items, received_us)
    await _identify_items(conn, environment_id, items, routes, received_us)
    items = await _drop_seen_keys(conn, environment_id, items, routes, received_us)
    if not items:
        return
    batch = await _new_events(conn, environment_id, items, routes, received_us)
    await PROJECTIONS.prepare_events(conn, batch)  # sessions: each row's session_id
    await insert_rows(conn, E, [item.row | item.documents for item in items], encoded=True)
    await PROJECTIONS.on_events(conn, batch)
    for item in items:
        item.outcome.accepted += 1
        item.outcome.stored[item.index] = (item.row["user_id"], item.row["id"])
    keys = [(item.row["user_id"], item.row["id"]) for item in items]
    live_notify.announce(conn, environment_id=environment_id, keys=keys)  # after the commit


async def _route_users(
    conn: AsyncConnection, environment_id: int, items: list[_Valid], received_us: int
) -> dict[UserKey, int]:
    """The user of each item's key and identity, creating users for unknown keys."""
    identify_keys = {UserKey("identity", i.identify_as) for i in items if i.identify_as}
    keys = {i.key for i in items}
    return await identities.resolve(
        conn,
        environment_id=environment_id,
        keys=keys | identify_keys,
        now_us=received_us,
        create=keys,
    )


async def _new_events(
    conn: AsyncConnection,
    environment_id: int,
    items: list[_Valid],
    routes: Mapping[UserKey, int],
    received_us: int,
) -> NewEvents:
    """The batch as the projections see it: rows with their users, and what users had before."""
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        item.row["user_id"] = routes[item.key]
        by_user[item.row["user_id"]].append(item.row)
    return NewEvents(
        environment_id=environment_id,
        received_us=received_us,
        rows=[item.row for item in items],
        by_user=dict(by_user),
        traits={item.row["id"]: item.traits for item in items},
        before=await _seen_before(conn, environment_id, list(by_user)),
    )


async def _identify_items(
    conn: AsyncConnection,
    environment_id: int,
    items: list[_Valid],
    routes: dict[UserKey, int],
    received_us: int,
) -> None:
    """Identify the users of items sent with both ids (client logins), as `identify` would one
    item at a time: the first identification of an anonymous user with an unused identity
    (the usual case) for all such items together, the rest (merges, conflicts) in order."""
    wanted = [
        item
        for item in items
        if item.identify_as is not None
        and routes.get(UserKey("identity", item.identify_as)) != routes[item.key]
    ]
    if not wanted:
        return
    known = await identities.identities_of(
        conn, environment_id=environment_id, user_ids=[routes[i.key] for i in wanted]
    )
    together: dict[int, str] = {}  # user -> identity
    in_order: list[_Valid] = []
    taken: set[int | str] = set()  # users and identities an earlier item touches
    for item in wanted:
        user, who = routes[item.key], item.identify_as
        assert who is not None
        if together.get(user) == who:
            continue
        first_identification = (
            user in known and known[user] is None and UserKey("identity", who) not in routes
        )
        if first_identification and user not in taken and who not in taken:
            together[user] = who
        else:
            in_order.append(item)
        taken |= {user, who}
    await PROJECTIONS.before_change(
        conn, environment_id=environment_id, user_ids=list(together), now_us=received_us
    )
    await identities.give_identities(conn, environment_id=environment_id, identities=together)
    for user, who in together.items():
        routes[UserKey("identity", who)] = user
    for item in in_order:
        identity_key = UserKey("identity", item.identify_as or "")
        if routes.get(identity_key) == routes[item.key]:
            continue
        try:
            done = await identities.identify(
                conn,
                environment_id=environment_id,
                user_id=routes[item.key],
                identity=item.identify_as or "",
                now_us=received_us,
                followers=PROJECTIONS,
            )
        except UsertrailError as error:
            item.outcome.problems.append(error.problem.at(item.index))
            continue
        for key, user in list(routes.items()):  # a merge re-routes every key of the old user
            if user == routes[item.key]:
                routes[key] = done.user_id
        routes[identity_key] = done.user_id


async def _drop_seen_keys(
    conn: AsyncConnection,
    environment_id: int,
    items: list[_Valid],
    routes: Mapping[UserKey, int],
    received_us: int,
) -> list[_Valid]:
    """Record idempotency keys; items whose key was seen before (stored, or earlier in
    `items`: merged calls may share one) count as duplicates."""
    first: dict[str, _Valid] = {}
    for item in items:
        if item.row["idempotency_key"] is not None:
            first.setdefault(item.row["idempotency_key"], item)
    if not first:
        return items
    keyed = list(first.values())
    rows = [
        {
            "environment_id": environment_id,
            "key": i.row["idempotency_key"],
            "user_id": routes[i.key],
            "event_id": i.row["id"],
            "created_us": received_us,
        }
        for i in keyed
    ]
    fresh: set[str] = set()
    if conn.dialect.name == "postgresql":  # concurrent writers: let the key's index decide
        statement = insert_ignoring_duplicates(conn, K, ["environment_id", "key"]).returning(
            K.c.key
        )
        for chunk in chunks(rows):
            fresh.update((await conn.execute(statement, list(chunk))).scalars())
    else:  # the single writer: no key can be stored between this read and the insert
        taken: set[str] = set()
        for chunk in chunks([row["key"] for row in rows]):
            taken.update(await conn.scalars(_TAKEN_KEYS, {"env": environment_id, "keys": chunk}))
        new = [row for row in rows if row["key"] not in taken]
        await insert_rows(conn, K, new)
        fresh = {row["key"] for row in new}
    kept: list[_Valid] = []
    for item in items:
        key = item.row["idempotency_key"]
        if key is None or (key in fresh and first[key] is item):
            kept.append(item)
        else:
            item.outcome.duplicates += 1
    return kept


_TAKEN_KEYS = select(K.c.key).where(
    K.c.environment_id == bindparam("env"), K.c.key.in_(bindparam("keys", expanding=True))
)


async def _seen_before(
    conn: AsyncConnection, environment_id: int, user_ids: list[int]
) -> dict[int, tuple[int, int, bool]]:
    """(first_seen_us, last_seen_us, has_events) of users before this batch."""
    found: dict[int, tuple[int, int, bool]] = {}
    for chunk in chunks(user_ids):
        rows = await conn.execute(_SEEN_BEFORE, {"env": environment_id, "users": list(chunk)})
        found.update({r[0]: (r[1], r[2], r[3]) for r in rows})
    return found


_SEEN_BEFORE = select(U.c.user_id, U.c.first_seen_us, U.c.last_seen_us, U.c.has_events).where(
    U.c.environment_id == bindparam("env"), U.c.user_id.in_(bindparam("users", expanding=True))
)


def _validate_user_properties(
    item: UserPropertiesItem, index: int
) -> tuple[int, UserKey, dict[str, Any]]:
    key, _ = _user_key(item, client=False)
    return index, key, storable(limits.user_properties(item.properties), "properties")


async def add_user_properties(
    db: Database,
    *,
    environment_id: int,
    items: Sequence[UserPropertiesItem],
    field_name: str = "users",
) -> Outcome:
    """Overwrite user properties per key, creating users for unknown identities or ids."""
    limits.batch_size(len(items), field_name)
    received = now_us()
    valid, problems = await validated(items, _validate_user_properties)

    async def work(conn: AsyncConnection) -> Outcome:
        outcome = Outcome(problems=list(problems))
        routes = await identities.resolve(
            conn, environment_id=environment_id, keys={key for _, key, _ in valid}, now_us=received
        )
        await PROJECTIONS.before_change(
            conn,
            environment_id=environment_id,
            user_ids=[routes[key] for _, key, _ in valid],
            now_us=received,
        )
        refusals = await identities.set_properties_many(
            conn,
            environment_id=environment_id,
            updates=[(routes[key], properties) for _, key, properties in valid],
        )
        for (index, key, _), refused in zip(valid, refusals, strict=True):
            if refused is not None:  # over the per-user limits: this item alone
                outcome.problems.append(refused.problem.at(index))
                continue
            outcome.users[index] = routes[key]
            outcome.accepted += 1
        return in_index_order(outcome)

    if not valid:
        return Outcome(problems=problems)
    return await writer(db, environment_id).submit(one_by_one, work, len(valid))


async def identify(
    db: Database, *, environment_id: int, user_id: Any, identity: Any, timestamp: Any = None
) -> identities.Identified:
    """Attach an identity to an existing user, merging into the identity's user if it has one."""
    received = now_us()
    key = UserKey("user_id", str(limits.user_id(user_id)))
    who = storable(limits.identity(identity), "identity")
    _event_time(timestamp, received)

    async def work(conn: AsyncConnection) -> identities.Identified:
        routes = await identities.resolve(
            conn,
            environment_id=environment_id,
            keys={key, UserKey("identity", who)},
            now_us=received,
            create=False,
        )
        if key not in routes:
            raise InvalidInput(
                f"no user with userId {key.value}", field="userId", code="UNKNOWN_USER"
            )
        return await identities.identify(
            conn,
            environment_id=environment_id,
            user_id=routes[key],
            identity=who,
            now_us=received,
            followers=PROJECTIONS,
        )

    return await db.write(work)
