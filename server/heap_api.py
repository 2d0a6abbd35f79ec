"""Heap's server-side HTTP API: `/api/track`, `/api/add_user_properties`, `/api/v1/identify`.

Heap's payloads become calls of services.ingest, the service behind the GraphQL mutations.
Events sent here are server-side (source SERVER). Answers: 200 `{"success": true, ...}`;
400 with a JSON error naming the field (`events[3].timestamp` in a bulk request) when
anything was refused — the valid items of a bulk request are stored all the same, and
the body says how many (`accepted`, `duplicates`) next to the `errors`.
"""

from __future__ import annotations

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
    decode_json_body,
    json_api,
    problem_list,
    read_body,
    refused_items,
)
from services import ingest, limits
from services.errors import Problem, UsertrailError

# 1000 events with long properties fit; anything bigger is not a Heap request.
MAX_BODY = 8 * 1024 * 1024
# The ingestion service names fields as GraphQL does; Heap spells them in snake case.
HEAP_NAMES = {"userId": "user_id", "idempotencyKey": "idempotency_key", "sessionId": "session_id"}


def heap_field(field: str | None, item: str | None = None) -> str | None:
    """A service field name as Heap spells it, inside `item` (e.g. `events[3]`) if given."""
    if field is None or field in ("input", "events", "users"):
        return item or field
    head, dot, rest = field.partition(".")
    name = HEAP_NAMES.get(head, head) + dot + rest
    return f"{item}.{name}" if item else name


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


def _text_id(value: Any) -> Any:
    """Heap accepts numeric identities; they are the same identity as their decimal string."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _not_an_object(index: int) -> Problem:
    return Problem("INVALID_BODY", "each item must be a JSON object", None, index)


def _answer(
    outcome: ingest.Outcome, problems: list[Problem], bulk_key: str, bulk: bool
) -> Response:
    every = sorted([*problems, *outcome.problems], key=lambda p: p.index or 0)
    counts = {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
    if every:
        errors = problem_list(
            (p if bulk else p.at(None) for p in every),
            lambda p: heap_field(p.field, f"{bulk_key}[{p.index}]" if bulk else None),
        )
        raise refused_items(errors, **counts)
    return JSONBody({"success": True, **counts})


def _positions(entries: list[Any]) -> tuple[list[int], list[Problem]]:
    """Indexes of the object entries, and a problem for every other entry."""
    kept = [i for i, entry in enumerate(entries) if isinstance(entry, dict)]
    return kept, [
        _not_an_object(i) for i, entry in enumerate(entries) if not isinstance(entry, dict)
    ]


def _renumber(outcome: ingest.Outcome, kept: list[int]) -> ingest.Outcome:
    """Problems placed at their index in the request rather than among the object entries."""
    outcome.problems = [p.at(kept[p.index]) if p.index is not None else p for p in outcome.problems]
    return outcome


async def _bulk(
    request: Request,
    bulk_key: str,
    item: Callable[[dict[str, Any]], Any],
    store: Callable[..., Awaitable[ingest.Outcome]],
) -> Response:
    """One item, or up to 1000 in `bulk_key`: `item` reads each object, `store` keeps them."""
    state, environment_id, body = await _request(request)
    entries, bulk = _items(body, bulk_key)
    kept, problems = _positions(entries)
    items = [item(entries[i]) for i in kept]
    outcome = await store(state.db, environment_id=environment_id, items=items)
    return _answer(_renumber(outcome, kept), problems, bulk_key, bulk)


@json_api
async def track(request: Request) -> Response:
    """POST /api/track: one event, or up to 1000 in `events`."""
    return await _bulk(
        request,
        "events",
        lambda entry: ingest.TrackItem(
            event=entry.get("event"),
            user_id=entry.get("user_id"),
            identity=_text_id(entry.get("identity")),
            session_id=entry.get("session_id"),
            source="SERVER",
            timestamp=entry.get("timestamp"),
            properties=entry.get("properties"),
            idempotency_key=entry.get("idempotency_key"),
        ),
        ingest.track,
    )


@json_api
async def add_user_properties(request: Request) -> Response:
    """POST /api/add_user_properties: one user's properties, or up to 1000 users in `users`."""
    return await _bulk(
        request,
        "users",
        lambda entry: ingest.UserPropertiesItem(
            properties=entry.get("properties"),
            user_id=entry.get("user_id"),
            identity=_text_id(entry.get("identity")),
        ),
        ingest.add_user_properties,
    )


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
        raise HttpProblem(400, error.code, error.message, field=heap_field(error.field)) from None
    return JSONBody({"success": True, "user_id": str(done.user_id), "merged": done.merged})


routes = [
    Route("/api/track", track, methods=["POST"]),
    Route("/api/add_user_properties", add_user_properties, methods=["POST"]),
    Route("/api/v1/identify", identify, methods=["POST"]),
]
