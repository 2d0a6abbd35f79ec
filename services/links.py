"""Segment's anonymous ids: links from an anonymous id to an identity (SPEC §1).

A Segment message with both ids, an `identify` after anonymous activity, or an explicit
`alias` routes the anonymous id to the identity's user: a first-seen id becomes an alias, a
seen one's anonymous user is identified or merged. Written through ingestion's group writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import Database
from services import identity as identities
from services import limits
from services.batch_items import validated
from services.clock import now_us
from services.errors import Conflict, Problem, UsertrailError
from services.geolocation import Sender
from services.identity import UserKey
from services.ingest import (
    Outcome,
    TrackItem,
    TrackRequest,
    anonymous_id,
    in_index_order,
    prepare_track,
    store_track_requests,
    track,
    tracked,
    writer,
)
from services.limits import storable
from services.projections import PROJECTIONS


@dataclass(slots=True)
class AnonymousLink:
    """An anonymous id seen with an identity (Segment identify or alias, any message with both)."""

    anonymous_id: Any
    identity: Any
    explicit: bool = False  # an alias asks for this link: refusing it is a problem, not a no-op


@dataclass(slots=True)
class LinkRequest:
    """A call's valid links, and what was said of the others, waiting to be applied."""

    links: list[tuple[int, UserKey, UserKey, bool]]  # (index, anonymous id, identity, explicit)
    problems: list[Problem]
    received_us: int

    def outcome(self) -> Outcome:
        """What the call did before any link is applied: the refused links."""
        return Outcome(problems=list(self.problems))


async def link_anonymous_ids(
    db: Database, *, environment_id: int, links: Sequence[AnonymousLink], field_name: str = "batch"
) -> Outcome:
    """Route anonymous ids to their identity's user, identifying or merging as SPEC §1 says.

    An unseen anonymous id becomes an alias of the identity's user (created if unknown). The
    anonymous user of a seen one is identified, or merged into the identity's user when that
    exists. An anonymous id whose user already has another identity keeps routing there
    (identified users are never merged); only an explicit link reports it (ALREADY_IDENTIFIED).
    `Outcome.users` maps each applied link's index to the identity's user, when known.
    """
    request = await prepare_links(links, field_name)
    if not request.links:
        return request.outcome()
    outcome = await writer(db, environment_id).submit(
        _apply_link_requests, (environment_id, request), len(request.links)
    )
    return in_index_order(outcome)


async def link_and_track(
    db: Database,
    *,
    environment_id: int,
    links: Sequence[AnonymousLink],
    items: Sequence[TrackItem],
    sender: Sender | None = None,
) -> tuple[Outcome, Outcome]:
    """`link_anonymous_ids`, then `ingest.track` (Segment: the links of a request's messages
    come before their events).

    On SQLite both go in one write transaction, one turn of the group writer rather than two,
    shared with concurrent requests. On PostgreSQL they stay two transactions: each takes all
    its key locks before its user locks (services/locks.py), and events after links in one
    transaction would take key locks after user locks, so that two requests whose users cross
    could deadlock.
    """
    if not db.is_sqlite:
        linked = await link_anonymous_ids(db, environment_id=environment_id, links=links)
        return linked, await track(db, environment_id=environment_id, items=items, sender=sender)
    link_request = await prepare_links(links, "batch")
    track_request = await prepare_track(environment_id=environment_id, items=items, sender=sender)
    size = len(link_request.links) + len(track_request.items)
    if size == 0:
        linked, stored = link_request.outcome(), track_request.outcome()
    else:
        linked, stored = await writer(db, environment_id).submit(
            _links_then_events, (environment_id, link_request, track_request), size
        )
    return in_index_order(linked), tracked(environment_id, stored)


async def prepare_links(links: Sequence[AnonymousLink], field_name: str) -> LinkRequest:
    """The links validated (no database needed)."""
    limits.batch_size(len(links), field_name)
    valid, problems = await validated(links, _validate_link)
    return LinkRequest(valid, problems, now_us())


def _validate_link(link: AnonymousLink, index: int) -> tuple[int, UserKey, UserKey, bool]:
    anonymous = anonymous_id(link.anonymous_id)
    who = storable(limits.identity(link.identity), "identity")
    return index, UserKey("anonymous_id", anonymous), UserKey("identity", who), link.explicit


async def _apply_link_requests(
    conn: AsyncConnection, requests: Sequence[tuple[int, LinkRequest]]
) -> list[Outcome]:
    """A group-writer run: each call's links, one call after the other."""
    return [await _apply_links(conn, env, request) for env, request in requests]


async def _links_then_events(
    conn: AsyncConnection, requests: Sequence[tuple[int, LinkRequest, TrackRequest]]
) -> list[tuple[Outcome, Outcome]]:
    """A group-writer run: each call's links, then its events, one call after the other, as if
    the calls came one at a time. The events of consecutive calls are stored together up to
    the next call with links (links may re-route the users of events sent before them)."""
    linked: list[Outcome] = []
    stored: list[Outcome] = []
    waiting: list[TrackRequest] = []  # events of calls whose links are applied
    for environment_id, links, events in requests:
        if links.links and waiting:
            stored += await store_track_requests(conn, waiting)
            waiting = []
        linked.append(await _apply_links(conn, environment_id, links))
        waiting.append(events)
    stored += await store_track_requests(conn, waiting)
    return list(zip(linked, stored, strict=True))


async def _apply_links(conn: AsyncConnection, environment_id: int, request: LinkRequest) -> Outcome:
    """Apply a call's valid links in the open write transaction."""
    valid, received = request.links, request.received_us
    outcome = request.outcome()
    if not valid:
        return outcome
    # Lock every key up front, in one sorted batch, before any link takes more locks.
    known = await identities.resolve(
        conn, environment_id=environment_id, keys=_keys_of(valid), now_us=received, create=False
    )
    fresh = await _alias_fresh_ids(conn, environment_id, valid, known, received, outcome)
    for index, anonymous, who, explicit in valid:
        if index in fresh:
            continue
        if _linked_before(known, anonymous, who):
            # The usual case: every message after an identify carries both ids. An
            # identified user is never merged away, so this stays true below.
            outcome.accepted += 1
            outcome.users[index] = known[who]
            continue
        try:
            user = await _link(conn, environment_id, anonymous, who, received, explicit)
        except UsertrailError as error:
            outcome.problems.append(error.problem.at(index))
            continue
        outcome.accepted += 1
        if user is not None:
            outcome.users[index] = user
    return outcome


def _linked_before(known: Mapping[UserKey, int], anonymous: UserKey, who: UserKey) -> bool:
    """Whether the anonymous id already routes to the identity's user."""
    return known.get(anonymous) is not None and known.get(anonymous) == known.get(who)


async def _alias_fresh_ids(
    conn: AsyncConnection,
    environment_id: int,
    links: list[tuple[int, UserKey, UserKey, bool]],
    known: Mapping[UserKey, int],
    received_us: int,
    outcome: Outcome,
) -> set[int]:
    """Apply together the links of anonymous ids never seen before (the usual case of a first
    visit); the indexes applied. Each becomes an alias of its identity's user, as `_link`
    would make it, in one statement for the batch. Links sharing an anonymous id or identity
    with a link that needs `_link` are left to it, in order (and so on, transitively): the
    links applied here touch no key the others do, so applying them first changes nothing.
    """
    candidates = [link for link in links if not link[3] and link[1] not in known]
    candidate_indexes = {link[0] for link in candidates}
    others = [
        link
        for link in links
        if link[0] not in candidate_indexes and not _linked_before(known, link[1], link[2])
    ]
    busy = _keys_of(others)
    chosen = candidates
    while left := [link for link in chosen if link[1] in busy or link[2] in busy]:
        # Only the links found now leave, their keys becoming busy: a link that shares a key
        # with one of them is found in the next round, so its keys become busy in turn.
        busy |= _keys_of(left)
        gone = {link[0] for link in left}
        chosen = [link for link in chosen if link[0] not in gone]
    if not chosen:
        return set()
    owners = await identities.resolve(
        conn,
        environment_id=environment_id,
        keys={who for _, _, who, _ in chosen},
        now_us=received_us,
    )
    aliased: dict[UserKey, UserKey] = {}  # anonymous id -> the identity it was linked to
    for index, anonymous, who, _ in chosen:
        first = aliased.setdefault(anonymous, who)
        outcome.accepted += 1
        if first == who:  # a later link to another identity is declined, as `_link` would
            outcome.users[index] = owners[who]
    await identities.add_aliases(
        conn,
        environment_id=environment_id,
        routes={anonymous: owners[who] for anonymous, who in aliased.items()},
    )
    return {link[0] for link in chosen}


async def _link(
    conn: AsyncConnection,
    environment_id: int,
    anonymous: UserKey,
    who: UserKey,
    received_us: int,
    explicit: bool,
) -> int | None:
    """Apply one link; the identity's user afterwards, or None when the link was declined."""
    routes = await identities.resolve(
        conn, environment_id=environment_id, keys={anonymous, who}, now_us=received_us, create=False
    )
    if anonymous not in routes:
        if explicit:  # an alias's previousId may also be an earlier identity
            await _refuse_identified_previous(
                conn, environment_id, anonymous.value, routes.get(who), received_us
            )
        routes |= await identities.resolve(
            conn, environment_id=environment_id, keys={who}, now_us=received_us
        )
        await identities.add_aliases(
            conn, environment_id=environment_id, routes={anonymous: routes[who]}
        )
        return routes[who]
    user_id = routes[anonymous]
    if routes.get(who) == user_id:
        return user_id
    user = await identities.get(conn, environment_id=environment_id, user_id=user_id)
    if user is not None and user.identity is not None:
        if explicit:
            raise Conflict(
                f"{anonymous.value!r:.80} belongs to a user identified as {user.identity!r:.80}; "
                "identified users are never merged",
                field="anonymousId",
                code="ALREADY_IDENTIFIED",
            )
        return None
    done = await identities.identify(
        conn,
        environment_id=environment_id,
        user_id=user_id,
        identity=who.value,
        now_us=received_us,
        followers=PROJECTIONS,
    )
    return done.user_id


def _keys_of(links: Sequence[tuple[int, UserKey, UserKey, bool]]) -> set[UserKey]:
    """The keys links name: anonymous ids, identities, and an alias's previous identity."""
    return {
        key
        for _, anonymous, who, explicit in links
        for key in (anonymous, who, *_previous_identity(anonymous, explicit))
    }


def _previous_identity(anonymous: UserKey, explicit: bool) -> tuple[UserKey, ...]:
    """The identity an alias's previousId may also be (see `_refuse_identified_previous`)."""
    return (UserKey("identity", anonymous.value),) if explicit else ()


async def _refuse_identified_previous(
    conn: AsyncConnection, environment_id: int, previous: str, owner: int | None, received_us: int
) -> None:
    """An alias from an earlier identity to another user would merge two identified users."""
    earlier = UserKey("identity", previous)
    routes = await identities.resolve(
        conn, environment_id=environment_id, keys={earlier}, now_us=received_us, create=False
    )
    if earlier in routes and routes[earlier] != owner:
        raise Conflict(
            f"{previous!r:.80} is the identity of another user; identified users are never merged",
            field="anonymousId",
            code="ALREADY_IDENTIFIED",
        )
