"""The Segment HTTP tracking API (also spoken by RudderStack SDKs): `/v1/batch`, `/v1/track`, ...

A request is authenticated by its write key (server/segment_auth.py), its messages are
translated into items of the ingestion service (server/segment_translation.py, which says
how each kind of message is read), and the items are stored by the service behind the
GraphQL mutations in three steps: links, then events, then traits.

- A timestamp that is no date-time refuses its message alone (`batch[2].timestamp`,
  `batch[2].originalTimestamp`, `batch[2].sentAt`); a batch's own unreadable `sentAt`, which
  would time every message, refuses the request (400 naming `sentAt`).
- Answers: 200 `{"success": true, "accepted", "duplicates"}`; 400 with a JSON error naming
  the message (`batch[2].event`) when a message was refused, the others being stored all
  the same (SDKs do not retry a 400; `messageId` would make a retry harmless anyway); 401
  without a usable write key (the write key is an API key of scope ingest or admin; it
  names the environment), 403 for a key of scope read; 503 when the database is
  unreachable (SDKs retry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.db import Database
from server.http_errors import HttpProblem, answer_items, json_api, read_json
from server.segment_auth import basic_auth_key, write_key_environment
from server.segment_translation import Plan, read_sent_at, translate
from server.segment_translation import source_of as source_of  # the tests' way in
from services import ingest
from services.batch_items import Placed
from services.clock import now_us
from services.errors import InvalidInput
from services.geolocation import Sender
from services.links import link_and_track, link_anonymous_ids

MAX_BATCH = 500 * 1024
MAX_ITEMS = 1000  # items per call of the ingestion service

T = TypeVar("T")

# analytics.js posts single messages to /v1/<first letter of the type> and batches to /v1/b.
PATHS = {
    None: ("batch", "b"),
    "track": ("track", "t"),
    "identify": ("identify", "i"),
    "page": ("page", "p"),
    "screen": ("screen", "s"),
    "alias": ("alias", "a"),
    "group": ("group", "g"),
}


def _endpoint(kind: str | None) -> Callable[[Request], Awaitable[Response]]:
    # Browser SDKs post from customers' sites: CORS, preflights included, is answered by
    # server/cross_origin.py, as for every route.
    endpoint = json_api(lambda request: _ingest(request, kind))
    endpoint.__name__ = f"segment_{kind or 'batch'}"
    return endpoint


routes = [
    Route(f"/v1/{path}", _endpoint(kind), methods=["POST"])
    for kind, paths in PATHS.items()
    for path in paths
]


async def _ingest(request: Request, kind: str | None) -> Response:
    """One request: authenticate, read, translate, then links, events and traits in that order."""
    received_us = now_us()
    header_key = basic_auth_key(request)
    body = await read_json(request, limit=MAX_BATCH)
    if not isinstance(body, dict):
        raise HttpProblem(400, "INVALID_BODY", "the body must be a JSON object")
    state = request.app.state.usertrail
    environment_id = await write_key_environment(state, header_key or body.get("writeKey"))
    if kind is None:
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise HttpProblem(400, "INVALID_BATCH", "batch must be an array", field="batch")
        context = body.get("context")
        shared = context if isinstance(context, dict) else {}
    else:
        messages, shared = [{**body, "type": kind}], {}
    sent_at = body.get("sentAt") or None
    if kind is None and sent_at is not None:
        _batch_sent_at(sent_at)
    plan = await translate(messages, shared=shared, sent_at=sent_at, received_us=received_us)
    return await _store(
        state.db,
        environment_id,
        plan,
        batch="batch" if kind is None else None,
        sender=state.sender_for(request),
    )


def _batch_sent_at(value: object) -> None:
    """A batch's own `sentAt` times every message in it: unreadable, it refuses the request."""
    try:
        read_sent_at(value)
    except InvalidInput as error:
        raise HttpProblem(
            400, error.code, f"{error.message}; nothing was stored", field="sentAt"
        ) from None


async def _store(
    db: Database, environment_id: int, plan: Plan, *, batch: str | None, sender: Sender | None
) -> Response:
    """Links, then events, then traits; the answer names each refused message. `sender` locates
    the events by IP address: `context.ip`, else the request's for client-side messages."""
    # Links, then events: in one write where they fit one service call each (on SQLite), so
    # that a failure stores neither; larger batches commit their links first.
    if len(plan.links) <= MAX_ITEMS and len(plan.events) <= MAX_ITEMS:
        linked, tracked = await link_and_track(
            db,
            environment_id=environment_id,
            links=plan.links.items,
            items=plan.events.items,
            sender=sender,
        )
        linked.problems = plan.links.problems(linked.problems)
        tracked.problems = plan.events.problems(tracked.problems)
    else:
        linked = await _in_chunks(
            plan.links,
            lambda batch: link_anonymous_ids(db, environment_id=environment_id, links=batch),
        )
        tracked = await _in_chunks(
            plan.events,
            lambda items: ingest.track(
                db, environment_id=environment_id, items=items, sender=sender
            ),
        )
    traits = await _in_chunks(
        plan.traits,
        lambda items: ingest.add_user_properties(db, environment_id=environment_id, items=items),
    )
    refused_links = {p.index for p in linked.problems}
    accepted = (
        plan.ignored + len(plan.aliases() - refused_links) + tracked.accepted + traits.accepted
    )
    return answer_items(
        [*plan.problems, *linked.problems, *tracked.problems, *traits.problems],
        batch=batch,
        accepted=accepted,
        duplicates=tracked.duplicates,
    )


async def _in_chunks(
    placed: Placed[T], call: Callable[[list[T]], Awaitable[ingest.Outcome]]
) -> ingest.Outcome:
    """Call the service with at most MAX_ITEMS items at a time; problems at message positions."""
    total = ingest.Outcome()
    for part in placed.slices(MAX_ITEMS):
        outcome = await call(part.items)
        total.accepted += outcome.accepted
        total.duplicates += outcome.duplicates
        total.problems += part.problems(outcome.problems)
    return total
