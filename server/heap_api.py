"""Heap's server-side HTTP API: `/api/track`, `/api/add_user_properties`, `/api/v1/identify`.

Heap's payloads are translated (pure functions: an object in, an item of services.ingest
out, kept with its position and Heap's field names in a services.batch_items.Placed) and
stored by the service behind the GraphQL mutations. Events sent here are server-side (source
SERVER). Answers: 200 `{"success": true, ...}`; 400 with a JSON error naming the field
(`events[3].timestamp` in a bulk request) when anything was refused — the valid items of a
bulk request are stored all the same, and the body says how many (`accepted`, `duplicates`)
next to the `errors`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.http_errors import (
    JSON_REFUSED,
    HttpProblem,
    JSONBody,
    answer_items,
    decode_json_body,
    json_api,
    read_body,
)
from services import ingest, limits
from services.batch_items import FieldNames, Placed, caller_field
from services.errors import Problem, UsertrailError

# 1000 events with long properties fit; anything bigger is not a Heap request.
MAX_BODY = 8 * 1024 * 1024
# The ingestion service names fields as GraphQL does; Heap spells them in snake case. A
# problem with a whole request or batch is one with the item.
HEAP_NAMES: FieldNames = {
    "userId": "user_id",
    "idempotencyKey": "idempotency_key",
    "sessionId": "session_id",
    "input": "",
    "events": "",
    "users": "",
}


# ------------------------------------------------------- translation (pure: no HTTP here)


def _text_id(value: Any) -> Any:
    """Heap accepts numeric identities; they are the same identity as their decimal string."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def track_item(entry: dict[str, Any]) -> ingest.TrackItem:
    """A Heap event as an item of the ingestion service (server-side: source SERVER).

    Of a `context` object only `ip` is read: the user's address a server may pass on, which
    locates the event (services/geolocation.py)."""
    context = entry.get("context")
    return ingest.TrackItem(
        event=entry.get("event"),
        user_id=entry.get("user_id"),
        identity=_text_id(entry.get("identity")),
        session_id=entry.get("session_id"),
        source="SERVER",
        timestamp=entry.get("timestamp"),
        properties=entry.get("properties"),
        context={"ip": context.get("ip")} if isinstance(context, dict) else None,
        idempotency_key=entry.get("idempotency_key"),
    )


def user_properties_item(entry: dict[str, Any]) -> ingest.UserPropertiesItem:
    """A Heap user's properties as an item of the ingestion service."""
    return ingest.UserPropertiesItem(
        properties=entry.get("properties"),
        user_id=entry.get("user_id"),
        identity=_text_id(entry.get("identity")),
    )


def translate(
    entries: list[Any], item: Callable[[dict[str, Any]], Any]
) -> tuple[Placed[Any], list[Problem]]:
    """The object entries as service items at their positions, and a problem for every other."""
    placed: Placed[Any] = Placed()
    refused: list[Problem] = []
    for position, entry in enumerate(entries):
        if isinstance(entry, dict):
            placed.add(item(entry), position, HEAP_NAMES)
        else:
            refused.append(
                Problem("INVALID_BODY", "each item must be a JSON object", None, position)
            )
    return placed, refused


# ------------------------------------------------------------------ reading requests


class _AppIdOnly(msgspec.Struct):
    """The one member of a Heap body read before the rest (msgspec skips the others unbuilt)."""

    app_id: Any = None


_APP_ID = msgspec.json.Decoder(_AppIdOnly)


async def _request(request: Request) -> tuple[Any, int, dict[str, Any]]:
    """The app state, the environment `app_id` names, and the JSON object sent.

    `app_id` is the only credential of these routes, so it is checked before the body is
    built into objects: the body is read and inflated (both bounded, linear), scanned for
    `app_id` alone, and only a known app id has the rest of the body decoded."""
    raw = await read_body(request, limit=MAX_BODY)
    try:
        app_id = _APP_ID.decode(raw).app_id
    except msgspec.ValidationError:  # valid JSON, not an object
        raise HttpProblem(400, "INVALID_BODY", "the body must be a JSON object") from None
    except JSON_REFUSED as error:
        raise HttpProblem(400, "INVALID_JSON", f"the body is not valid JSON: {error}") from None
    if isinstance(app_id, int) and not isinstance(app_id, bool):
        app_id = str(app_id)
    if not isinstance(app_id, str) or not app_id.strip():
        raise HttpProblem(
            400, "MISSING_APP_ID", "app_id is required: it names the environment", field="app_id"
        )
    state = request.app.state.usertrail
    environment_id = await state.environment_for_app_id(app_id.strip())
    if environment_id is None:
        raise HttpProblem(
            400, "UNKNOWN_APP_ID", f"no environment has app_id {app_id!r:.40}", field="app_id"
        )
    body = decode_json_body(raw)
    if not isinstance(body, dict):  # cannot be: _AppIdOnly decoded it as an object
        raise HttpProblem(400, "INVALID_BODY", "the body must be a JSON object")
    return state, environment_id, body


def _items(body: dict[str, Any], bulk_key: str) -> tuple[list[dict[str, Any]], bool]:
    """The objects of a bulk request (`events` or `users`), or the body itself as one item."""
    if bulk_key not in body:
        return [body], False
    items = body[bulk_key]
    if not isinstance(items, list):
        raise HttpProblem(
            400, "INVALID_BODY", f"{bulk_key} must be an array of objects", field=bulk_key
        )
    limits.batch_size(len(items), bulk_key)
    return items, True


# ------------------------------------------------------------------------------- routes


async def _bulk(
    request: Request,
    bulk_key: str,
    item: Callable[[dict[str, Any]], Any],
    store: Callable[..., Awaitable[ingest.Outcome]],
) -> Response:
    """One item, or up to 1000 in `bulk_key`: `item` translates each object, `store` keeps them."""
    state, environment_id, body = await _request(request)
    entries, bulk = _items(body, bulk_key)
    placed, refused = translate(entries, item)
    outcome = await store(state.db, environment_id=environment_id, items=placed.items)
    return answer_items(
        [*refused, *placed.problems(outcome.problems)],
        batch=bulk_key if bulk else None,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
    )


@json_api
async def track(request: Request) -> Response:
    """POST /api/track: one event, or up to 1000 in `events`; `context.ip` locates an event."""
    sender = request.app.state.usertrail.sender_for(request)
    return await _bulk(
        request, "events", track_item, functools.partial(ingest.track, sender=sender)
    )


@json_api
async def add_user_properties(request: Request) -> Response:
    """POST /api/add_user_properties: one user's properties, or up to 1000 users in `users`."""
    return await _bulk(request, "users", user_properties_item, ingest.add_user_properties)


@json_api
async def identify(request: Request) -> Response:
    """POST /api/v1/identify: give the user `user_id` the identity, merging as SPEC §1 says."""
    state, environment_id, body = await _request(request)
    try:
        done = await ingest.identify(
            state.db,
            environment_id=environment_id,
            user_id=body.get("user_id"),
            identity=_text_id(body.get("identity")),
            timestamp=body.get("timestamp"),
        )
    except UsertrailError as error:
        raise HttpProblem(
            400, error.code, error.message, field=caller_field(error.field, HEAP_NAMES)
        ) from None
    return JSONBody({"success": True, "user_id": str(done.user_id), "merged": done.merged})


routes = [
    Route("/api/track", track, methods=["POST"]),
    Route("/api/add_user_properties", add_user_properties, methods=["POST"]),
    Route("/api/v1/identify", identify, methods=["POST"]),
]
