"""Data derived from events, kept right in one place: the projections and their order.

A projection maintains a table (or columns) computed from events: sessions, definition
matches, rage clicks, users' activity span, counts and sort-key versions and `Initial …`
properties. Ingestion
(services/ingest.py), merges (services/identity.py, through the `Followers` protocol) and
deletions (services/users.py) all run the one registry, `PROJECTIONS`, hook by hook, in its
order. A new derived table is a `Projection` subclass here and one line in `PROJECTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Event, Session
from services import definitions, rage_clicks, segment_members, user_versions
from services import identity as identities
from services.identity import Merge
from services.initial_properties import refresh_initial_properties
from services.sessionize import TimelineEvent, event_page, is_page_view
from services.sessionizer import (
    Incoming,
    Resequenced,
    resequence,
    timeline_columns,
    timeline_event,
)
from services.traits import TraitSource, traits_of_row

E = Event.__table__
S = Session.__table__


@dataclass(slots=True)
class NewEvents:
    """A batch of events being stored: what every projection sees of it."""

    environment_id: int
    received_us: int
    rows: list[dict[str, Any]]  # event rows, in the batch's order, each with its user_id
    by_user: dict[int, list[dict[str, Any]]]  # the same rows by user, in the batch's order
    traits: dict[int, TraitSource | None]  # event id -> what a client event says of its device
    # user -> (first_seen_us, last_seen_us, has_events) before the batch
    before: dict[int, tuple[int, int, bool]]
    # Left by `Sessions` for those after it: the session rows it recomputed, per user.
    sessions: Resequenced = field(default_factory=Resequenced)


class Projection:
    """Derived data: each hook does nothing unless a projection overrides it.

    Hooks run inside the write transaction, with the users locked, in registry order.
    """

    name = "projection"

    async def prepare_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Before the batch's rows are inserted: fill columns of the rows themselves."""

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """After the batch's rows are inserted."""

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Before the source's events, keys and aliases become the target's."""

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """After they have, and the source user is gone."""

    async def before_change(
        self, conn: AsyncConnection, *, environment_id: int, user_ids: list[int], now_us: int
    ) -> None:
        """Before users' identity or properties change."""

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Before the user's events, aliases, keys and row are erased."""


class Sessions(Projection):
    """Sessions (SPEC §2), and each event's session_id: services/sessionizer.py."""

    name = "sessions"

    async def prepare_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Give each new row its session, recomputing the sessions around the batch."""
        batch.sessions = await resequence(
            conn,
            environment_id=batch.environment_id,
            incoming={
                user: [
                    Incoming(_timeline_event(row), None, batch.traits[row["id"]]) for row in rows
                ]
                for user, rows in batch.by_user.items()
            },
        )
        for row in batch.rows:
            row["session_id"] = batch.sessions.assignments[row["id"]]

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Note the source's events and its client sessions' traits; drop its sessions."""
        env, source = merge.environment_id, merge.source_id
        of_source = (S.c.environment_id == env) & (S.c.user_id == source)
        traits = {
            row["first_event_id"]: traits_of_row(row)
            for row in (await conn.execute(select(S).where(of_source))).mappings()
            if row["origin"] == "CLIENT"
        }
        moved = [
            timeline_event(r)
            for r in await conn.execute(
                select(*timeline_columns(conn.dialect.name)).where(
                    E.c.environment_id == env, E.c.user_id == source
                )
            )
        ]
        await conn.execute(delete(S).where(of_source))
        merge.carried[self.name] = (traits, moved)

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Resequence the target's timeline with the source's events in it."""
        traits, moved = merge.carried[self.name]
        if not moved:
            return
        env, target = merge.environment_id, merge.target_id
        done = await resequence(
            conn,
            environment_id=env,
            incoming={target: [Incoming(e, None, traits.get(e.id)) for e in moved]},
        )
        await conn.execute(
            update(E)
            .where(E.c.environment_id == env, E.c.user_id == target, E.c.id == bindparam("b_id"))
            .values(session_id=bindparam("b_session")),
            [{"b_id": eid, "b_session": sid} for eid, sid in done.assignments.items()],
        )

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Forget the user's sessions."""
        await conn.execute(
            delete(S).where(S.c.environment_id == environment_id, S.c.user_id == user_id)
        )


def _timeline_event(row: Any) -> TimelineEvent:
    """A new event's row as sessionization sees it (its page from its `path`/`name`)."""
    properties = row["properties"]
    return TimelineEvent(
        row["id"],
        row["time_us"],
        row["source"],
        row["client_session_id"],
        row["replay"],
        event_page(row["type"], row["source"], properties.get("path"), properties.get("name")),
        is_page_view(row["type"], row["source"]),
    )


class DefinitionMatches(Projection):
    """Which events match which defined events: services/definitions.py."""

    name = "definition matches"

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Match the new events against the live definitions."""
        await definitions.match_new_events(
            conn, environment_id=batch.environment_id, rows=batch.rows
        )

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Move the source's matches to the target."""
        await definitions.on_merge(
            conn,
            environment_id=merge.environment_id,
            source_id=merge.source_id,
            target_id=merge.target_id,
        )

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Forget the user's matches."""
        await definitions.on_user_deleted(conn, environment_id=environment_id, user_id=user_id)


class RageClicks(Projection):
    """Clicks in rage-click bursts (SPEC §3): services/rage_clicks.py."""

    name = "rage clicks"

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Record the bursts the new clicks complete."""
        await rage_clicks.update_rage_clicks(
            conn,
            environment_id=batch.environment_id,
            rows=batch.rows,
            stored_spans={
                user: (first, last) if had else None
                for user, (first, last, had) in batch.before.items()
            },
        )

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Carry the source's rage clicks over (it reads the source's clicks: before the move)."""
        await rage_clicks.on_merge(
            conn,
            environment_id=merge.environment_id,
            source_id=merge.source_id,
            target_id=merge.target_id,
        )

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Forget the user's rage clicks."""
        await rage_clicks.on_user_deleted(conn, environment_id=environment_id, user_id=user_id)


class Activity(Projection):
    """Users' first and last seen and last activity (a merge combines them itself)."""

    name = "activity"

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Widen each user's seen span to the new events'."""
        spans = {
            user: (min(r["time_us"] for r in rows), max(r["time_us"] for r in rows))
            for user, rows in batch.by_user.items()
        }
        await identities.note_activity(
            conn, environment_id=batch.environment_id, spans=spans, received_us=batch.received_us
        )


class SortKeys(Projection):
    """Users' event and session counts, and their sort keys before each change (the users
    list's other orders): services/user_versions.py. Counts sessions `Sessions` wrote."""

    name = "sort keys"

    async def prepare_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Keep the users' sort keys before the batch changes them."""
        await user_versions.keep(
            conn,
            environment_id=batch.environment_id,
            user_ids=list(batch.by_user),
            at_us=batch.received_us,
        )

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Count the new events, recount the sessions."""
        await user_versions.count(
            conn,
            environment_id=batch.environment_id,
            added={user: len(rows) for user, rows in batch.by_user.items()},
            at_us=batch.received_us,
        )

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Keep the target's sort keys before the merge changes them."""
        await user_versions.keep(
            conn,
            environment_id=merge.environment_id,
            user_ids=[merge.target_id],
            at_us=merge.now_us,
        )

    async def before_change(
        self, conn: AsyncConnection, *, environment_id: int, user_ids: list[int], now_us: int
    ) -> None:
        """Keep the users' sort keys before their identity or properties change."""
        await user_versions.keep(
            conn, environment_id=environment_id, user_ids=user_ids, at_us=now_us
        )

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Recount the target; the source is gone."""
        env = merge.environment_id
        await user_versions.recount(
            conn, environment_id=env, user_id=merge.target_id, at_us=merge.now_us
        )
        await user_versions.forget(conn, environment_id=env, user_id=merge.source_id)

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Forget the user's versions."""
        await user_versions.forget(conn, environment_id=environment_id, user_id=user_id)


class InitialProperties(Projection):
    """`Initial …` properties from the earliest client session: services/initial_properties.py.

    Reads the sessions `Sessions` wrote, so it comes after it.
    """

    name = "initial properties"

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Recompute them for users whose earliest client session may have changed."""
        written = batch.sessions.sessions
        # The earliest client session changes only where the recomputed window holds a client
        # session (a removed one's events land in another), or for users new to events.
        stale = [
            user
            for user, (*_, had_events) in batch.before.items()
            if not had_events or any(s["origin"] == "CLIENT" for s in written[user])
        ]
        await refresh_initial_properties(
            conn,
            environment_id=batch.environment_id,
            user_ids=stale,
            known={user: written[user] for user, (*_, had) in batch.before.items() if not had},
        )

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Recompute the target's: the source's sessions are its sessions now."""
        await refresh_initial_properties(
            conn, environment_id=merge.environment_id, user_ids=[merge.target_id]
        )


class StaticSegmentMembers(Projection):
    """Who static segments list (services/segment_members.py): not derived from events, but
    rows of one user that follow the user through merges and deletions, as derived ones do."""

    name = "static segment members"

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """The merged user's memberships become the survivor's."""
        await segment_members.on_merge(
            conn,
            environment_id=merge.environment_id,
            source_id=merge.source_id,
            target_id=merge.target_id,
        )

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Forget the user's memberships."""
        await segment_members.on_user_deleted(conn, environment_id=environment_id, user_id=user_id)


class Registry:
    """Projections in order; each hook runs every projection's, in that order."""

    def __init__(self, *projections: Projection) -> None:
        self.projections = list(projections)

    async def prepare_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """Before a batch's rows are inserted (sessions give each row its session_id)."""
        for projection in self.projections:
            await projection.prepare_events(conn, batch)

    async def on_events(self, conn: AsyncConnection, batch: NewEvents) -> None:
        """After a batch's rows are inserted."""
        for projection in self.projections:
            await projection.on_events(conn, batch)

    async def before_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """Before a merge moves the source's rows (identity.Followers)."""
        for projection in self.projections:
            await projection.before_merge(conn, merge)

    async def on_merge(self, conn: AsyncConnection, merge: Merge) -> None:
        """After a merge moved them (identity.Followers)."""
        for projection in self.projections:
            await projection.on_merge(conn, merge)

    async def before_change(
        self, conn: AsyncConnection, *, environment_id: int, user_ids: list[int], now_us: int
    ) -> None:
        """Before users' identity or properties change (identity.Followers)."""
        for projection in self.projections:
            await projection.before_change(
                conn, environment_id=environment_id, user_ids=user_ids, now_us=now_us
            )

    async def on_user_deleted(
        self, conn: AsyncConnection, *, environment_id: int, user_id: int
    ) -> None:
        """Before a user is erased."""
        for projection in self.projections:
            await projection.on_user_deleted(conn, environment_id=environment_id, user_id=user_id)


# The one list: a new derived table is a Projection above and a line here. Order matters
# only where a projection reads another's output: sessions come first (rows need their
# session_id before they are inserted, and Initial properties read the sessions written).
# Otherwise each touches its own table, so e.g. a merge may drop the source's sessions
# before or after moving its matches and rage clicks.
PROJECTIONS = Registry(
    Sessions(),
    DefinitionMatches(),
    RageClicks(),
    Activity(),
    SortKeys(),
    InitialProperties(),
    StaticSegmentMembers(),
)
