"""The Segment HTTP tracking API (also spoken by RudderStack SDKs): `/v1/batch`, `/v1/track`, ...

Messages become calls of services.ingest, the service behind the GraphQL mutations, in three
steps per request: anonymousId-userId links (alias, and any message carrying both ids, such
as identify), then events (track, page, screen), then traits (identify).

- `userId` is the identity; an `anonymousId` alone reaches an anonymous user through an
  alias. A link identifies or merges the anonymous user (SPEC §1); an anonymous id already
  identified as someone else stays with them (a shared device), silently except for alias.
- `page` is a `pageview` event (page properties and `context.page` give url, path, title,
  referrer); `screen` is a `screenview` event whose `name` property is the screen's name;
  `group` is accepted and not stored.
- The source comes from `context.library.name`, else `context.device.type` / `context.os.name`
  (see `source_of`); `context.campaign` gives `utm_*` properties of client events;
  `context.sessionId` (RudderStack) is the client session id.
- Nested properties and traits are flattened to dotted keys (`address.city`); arrays of
  objects become JSON text. Traits `id`, `userId` and `identity` repeat the message's ids
  and are dropped; the trait `email` sets Email.
- `messageId` is the idempotency key of events; timestamps (or RudderStack's
  `originalTimestamp`) are corrected for clock skew with the message's or batch's `sentAt`.
  A timestamp that is no date-time refuses its message alone (`batch[2].timestamp`,
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

import base64
import binascii
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.http_errors import (
    HttpProblem,
    JSONBody,
    json_api,
    problem_list,
    read_json,
    refused_items,
)
from services import ingest, limits
from services.batching import in_slices
from services.clock import now_us, parse_time, to_datetime, to_micros
from services.errors import InvalidInput, Problem, UsertrailError
from services.links import AnonymousLink, link_and_track, link_anonymous_ids

MAX_MESSAGE = 32 * 1024
MAX_BATCH = 500 * 1024
MAX_ITEMS = 1000  # items per call of the ingestion service
PAGE_EVENT = "pageview"  # Heap's raw type for page views
SCREEN_EVENT = "screenview"  # a mobile screen view; the screen's name is the `name` property
EVENT_TYPES = ("track", "page", "screen")
# Known SDKs by `context.library.name`. Unknown ones are judged by device and OS.
CLIENT_LIBRARIES = {
    "analytics.js": "WEB",
    "analytics-next": "WEB",
    "@segment/analytics-next": "WEB",
    "rudderlabs javascript sdk": "WEB",
    "rudder-sdk-js": "WEB",
    "@rudderstack/analytics-js": "WEB",
    "analytics-ios": "IOS",
    "analytics-swift": "IOS",
    "rudder-ios-library": "IOS",
    "rudder-sdk-ios": "IOS",
    "analytics-android": "ANDROID",
    "analytics-kotlin": "ANDROID",
    "com.rudderstack.android.sdk.core": "ANDROID",
    "rudder-sdk-android": "ANDROID",
}
MOBILE_SYSTEMS = {"ios": "IOS", "ipados": "IOS", "iphone os": "IOS", "android": "ANDROID"}
# Where the service names a context field after GraphQL's EventContext, Segment nests it.
SEGMENT_NAMES = {
    "identity": "userId",
    "idempotencyKey": "messageId",
    "sessionId": "context.sessionId",
    "context.url": "context.page.url",
    "context.referrer": "context.page.referrer",
    "context.title": "context.page.title",
    "context.screenWidth": "context.screen.width",
    "context.screenHeight": "context.screen.height",
    "context.appName": "context.app.name",
    "context.appVersion": "context.app.version",
}
FLATTEN_DEPTH = 4  # deeper objects are kept as JSON text

T = TypeVar("T")


@dataclass(slots=True)
class Plan:
    """What a request's messages ask of the ingestion service, each item with its message index."""

    links: list[tuple[int, AnonymousLink]] = field(default_factory=list)
    events: list[tuple[int, ingest.TrackItem]] = field(default_factory=list)
    traits: list[tuple[int, ingest.UserPropertiesItem]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: int = 0  # group messages: accepted, nothing to store
    seen: set[tuple[str, str]] = field(default_factory=set)  # (anonymousId, userId) linked
    original_time: set[int] = field(default_factory=set)  # events timed by originalTimestamp


# ------------------------------------------------------------------------------- routes


def _endpoint(kind: str | None) -> Callable[[Request], Awaitable[Response]]:
    # Browser SDKs post from customers' sites: CORS, preflights included, is answered by
    # server/cross_origin.py, as for every route.
    endpoint = json_api(lambda request: _ingest(request, kind))
    endpoint.__name__ = f"segment_{kind or 'batch'}"
    return endpoint


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
routes = [
    Route(f"/v1/{path}", _endpoint(kind), methods=["POST"])
    for kind, paths in PATHS.items()
    for path in paths
]


async def _ingest(request: Request, kind: str | None) -> Response:
    """One request: authenticate, read, plan, then links, events and traits in that order."""
    received_us = now_us()
    header_key = _basic_auth_key(request)
    body = await read_json(request, limit=MAX_BATCH)
    if not isinstance(body, dict):
        raise HttpProblem(400, "INVALID_BODY", "the body must be a JSON object")
    state = request.app.state.usertrail
    environment_id = await _environment(state, header_key or body.get("writeKey"))
    if kind is None:
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise HttpProblem(400, "INVALID_BATCH", "batch must be an array", field="batch")
        shared = body.get("context") if isinstance(body.get("context"), dict) else {}
    else:
        messages, shared = [{**body, "type": kind}], {}
    sent_at = body.get("sentAt") or None
    if kind is None and sent_at is not None:
        _batch_sent_at(sent_at)
    plan = Plan()
    async for start, part in in_slices(messages):
        for index, message in enumerate(part, start):
            try:
                _plan_message(plan, index, message, shared, sent_at, received_us)
            except UsertrailError as error:
                plan.problems.append(error.problem.at(index))
    return await _run(state.db, environment_id, plan, single=kind is not None)


def _batch_sent_at(value: Any) -> None:
    """A batch's own `sentAt` times every message in it: unreadable, it refuses the request."""
    try:
        _micros(value, "sentAt")
    except InvalidInput as error:
        raise HttpProblem(
            400, error.code, f"{error.message}; nothing was stored", field="sentAt"
        ) from None


def _basic_auth_key(request: Request) -> str | None:
    """The write key of `Authorization: Basic base64(writeKey:)`, if the request has one."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise HttpProblem(401, "INVALID_AUTHORIZATION", "use HTTP Basic auth with writeKey:")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise HttpProblem(
            401, "INVALID_AUTHORIZATION", "the Basic credentials are not base64"
        ) from None
    user, _, password = decoded.partition(":")
    return user or password or None


async def _environment(state: Any, write_key: Any) -> int:
    if not isinstance(write_key, str) or not write_key:
        raise HttpProblem(
            401,
            "MISSING_WRITE_KEY",
            "send the write key as HTTP Basic auth (writeKey:) or as writeKey in the body",
        )
    environment_id = await state.environment_for_write_key(write_key)
    if environment_id is None:
        raise HttpProblem(
            401,
            "UNKNOWN_WRITE_KEY",
            "the write key is not an active API key: use an ingest key made by "
            "`usertrail key create --scope ingest`",
        )
    return int(environment_id)


async def _run(db: Any, environment_id: int, plan: Plan, *, single: bool) -> Response:
    # Links, then events: in one write where they fit one service call each (on SQLite), so
    # that a failure stores neither; larger batches commit their links first.
    if len(plan.links) <= MAX_ITEMS and len(plan.events) <= MAX_ITEMS:
        linked, tracked = await link_and_track(
            db,
            environment_id=environment_id,
            links=[link for _, link in plan.links],
            items=[item for _, item in plan.events],
        )
        linked, tracked = _at_messages(linked, plan.links), _at_messages(tracked, plan.events)
    else:
        linked = await _in_chunks(
            plan.links,
            lambda batch: link_anonymous_ids(db, environment_id=environment_id, links=batch),
        )
        tracked = await _in_chunks(
            plan.events, lambda items: ingest.track(db, environment_id=environment_id, items=items)
        )
    traits = await _in_chunks(
        plan.traits,
        lambda items: ingest.add_user_properties(db, environment_id=environment_id, items=items),
    )
    aliases = {index for index, link in plan.links if link.explicit}
    refused_links = {p.index for p in linked.problems}
    accepted = plan.ignored + len(aliases - refused_links) + tracked.accepted + traits.accepted
    problems = [
        *plan.problems,
        *(
            _renamed(p, "anonymousId", "previousId") if p.index in aliases else p
            for p in linked.problems
        ),
        *(
            _renamed(p, "timestamp", "originalTimestamp") if p.index in plan.original_time else p
            for p in tracked.problems
        ),
        *(_renamed(p, "properties", "traits") for p in traits.problems),
    ]
    counts = {"accepted": accepted, "duplicates": tracked.duplicates}
    if not problems:
        return JSONBody({"success": True, **counts})
    unique = {(p.index, p.code, p.field): p for p in problems}.values()  # a link and its event
    errors = problem_list(
        sorted(unique, key=lambda p: p.index or 0),
        lambda p: _segment_field(p, None if single else f"batch[{p.index}]"),
    )
    if single:
        for error in errors:
            error["index"] = None
    raise refused_items(errors, **counts)


async def _in_chunks(
    items: list[tuple[int, T]], call: Callable[[list[T]], Awaitable[ingest.Outcome]]
) -> ingest.Outcome:
    """Call the service with at most MAX_ITEMS items at a time; problems at message indexes."""
    total = ingest.Outcome()
    for start in range(0, len(items), MAX_ITEMS):
        chunk = items[start : start + MAX_ITEMS]
        outcome = _at_messages(await call([item for _, item in chunk]), chunk)
        total.accepted += outcome.accepted
        total.duplicates += outcome.duplicates
        total.problems += outcome.problems
    return total


def _at_messages(outcome: ingest.Outcome, items: list[tuple[int, Any]]) -> ingest.Outcome:
    """The outcome of a service call on `items` with its problems at their message indexes."""
    outcome.problems = [p.at(items[p.index][0]) for p in outcome.problems if p.index is not None]
    return outcome


def _renamed(problem: Problem, service_name: str, segment_name: str) -> Problem:
    """The problem with its field's head renamed (alias: previousId; identify: traits.*)."""
    head, dot, rest = (problem.field or "").partition(".")
    if head != service_name:
        return problem
    return Problem(problem.code, problem.message, segment_name + dot + rest, problem.index)


def _segment_field(problem: Problem, item: str | None) -> str | None:
    name = problem.field
    if name is not None:
        head, dot, rest = name.partition(".")
        name = SEGMENT_NAMES.get(name) or SEGMENT_NAMES.get(head, head) + dot + rest
    if item is None:
        return name
    return f"{item}.{name}" if name else item


# ----------------------------------------------------------------------------- messages


def _plan_message(
    plan: Plan,
    index: int,
    message: Any,
    shared: Mapping[str, Any],
    batch_sent_at: Any,
    received_us: int,
) -> None:
    """Add what one message asks for to the plan, or raise the reason it is refused."""
    if not isinstance(message, dict):
        raise InvalidInput("each message must be a JSON object", field=None, code="INVALID_MESSAGE")
    try:
        size = len(orjson.dumps(message))
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels)
        raise InvalidInput(
            "the message nests too deeply", field=None, code="INVALID_MESSAGE"
        ) from None
    if size > MAX_MESSAGE:
        raise InvalidInput(
            f"the message is {size} bytes; the limit is {MAX_MESSAGE}",
            field=None,
            code="MESSAGE_TOO_LARGE",
        )
    kind = message.get("type")
    user_id = _id(message.get("userId"), "userId")
    if kind == "alias":
        previous = _id(message.get("previousId"), "previousId")
        if previous is None or user_id is None:
            raise InvalidInput(
                "alias needs previousId and userId", field="previousId", code="MISSING_USER"
            )
        plan.links.append((index, AnonymousLink(previous, user_id, explicit=True)))
        return
    anonymous_id = _id(message.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidInput("give userId or anonymousId", field="userId", code="MISSING_USER")
    if anonymous_id is not None:  # checked now: a refused link must not leave its event stored
        ingest.anonymous_id(anonymous_id)
    if (
        user_id is not None
        and anonymous_id is not None
        and (anonymous_id, user_id) not in plan.seen
    ):
        plan.seen.add((anonymous_id, user_id))
        plan.links.append((index, AnonymousLink(anonymous_id, user_id)))
    who = {"identity": user_id} if user_id is not None else {"anonymous_id": anonymous_id}
    context = {**shared, **_object(message.get("context"))}
    if kind == "identify":
        traits = {**_object(context.get("traits")), **_object(message.get("traits"))}
        plan.traits.append((index, ingest.UserPropertiesItem(properties=_traits(traits), **who)))
    elif kind in EVENT_TYPES:
        plan.events.append((index, _event(kind, message, context, who, batch_sent_at, received_us)))
        if time_field(message) == "originalTimestamp":
            plan.original_time.add(index)
    elif kind == "group":
        plan.ignored += 1
    else:
        raise InvalidInput(
            "type must be one of track, identify, page, screen, alias, group",
            field="type",
            code="INVALID_TYPE",
        )


def _event(
    kind: str,
    message: Mapping[str, Any],
    context: Mapping[str, Any],
    who: dict[str, Any],
    batch_sent_at: Any,
    received_us: int,
) -> ingest.TrackItem:
    source = source_of(kind, context)
    page = _object(context.get("page"))
    properties = flatten(_object(message.get("properties")))
    if kind == "track":
        name = message.get("event")
    else:
        name = PAGE_EVENT if kind == "page" else SCREEN_EVENT
        for key in ("name", "category"):
            if message.get(key) is not None:
                properties.setdefault(key, message[key])
    if kind == "page":
        for key in ("url", "path", "title", "referrer", "search"):
            if page.get(key) is not None:
                properties.setdefault(key, page[key])
    if source != "SERVER":
        for key, value in _object(context.get("campaign")).items():
            if isinstance(value, str) and value:  # Segment's campaign.name is utm_campaign
                properties.setdefault(f"utm_{'campaign' if key == 'name' else key}", value)
    session_id = context.get("sessionId")
    return ingest.TrackItem(
        event=name,
        session_id=str(session_id) if isinstance(session_id, int | str) else None,
        source=source,
        timestamp=event_time(message, batch_sent_at, received_us),
        properties=properties,
        context=_event_context(context, properties),
        idempotency_key=_id(message.get("messageId"), "messageId"),
        **who,
    )


def source_of(kind: str, context: Mapping[str, Any]) -> str:
    """WEB, IOS, ANDROID or SERVER for a message: its library, else its device and OS.

    Known client SDKs name their platform. Otherwise `context.device.type` or `context.os.name`
    saying iOS or Android make a mobile event (React Native, Flutter, server relays); a page
    view is a web page view even when a server library reports it; other messages from
    server libraries, or without a user agent, are server-side.
    """
    library = _object(context.get("library")).get("name")
    known = CLIENT_LIBRARIES.get(library.strip().lower()) if isinstance(library, str) else None
    if known:
        return known
    device = _object(context.get("device")).get("type")
    system = _object(context.get("os")).get("name")
    for hint in (device, system):
        if isinstance(hint, str) and hint.strip().lower() in MOBILE_SYSTEMS:
            return MOBILE_SYSTEMS[hint.strip().lower()]
    if kind == "page" or (isinstance(device, str) and device.lower() in ("web", "browser")):
        return "WEB"
    if library is None and isinstance(context.get("userAgent"), str):
        return "WEB"
    return "SERVER"


def time_field(message: Mapping[str, Any]) -> str:
    """The message field its event time comes from: `timestamp`, else RudderStack's
    `originalTimestamp`."""
    return "timestamp" if message.get("timestamp") else "originalTimestamp"


def event_time(message: Mapping[str, Any], batch_sent_at: Any, received_us: int) -> Any:
    """The event time corrected for client clock skew: receivedAt - (sentAt - timestamp).

    An unreadable timestamp or sentAt refuses the message, naming the field it was in.
    """
    name = time_field(message)
    stamp = message.get(name)
    if stamp is None:
        return None
    sent_at = message.get("sentAt") or batch_sent_at or None
    micros = _micros(stamp, name)
    if sent_at is not None:
        micros = received_us - (_micros(sent_at, "sentAt") - micros)
    try:
        return to_datetime(micros)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(
            f"{name} and sentAt are too far apart"
            if sent_at is not None
            else f"{name} is out of range",
            field=name,
            code="INVALID_TIMESTAMP",
        ) from None


def _micros(value: Any, name: str) -> int:
    """Epoch µs of an ISO 8601 text or epoch milliseconds, as the ingestion service reads them."""
    try:
        if isinstance(value, str):
            return to_micros(parse_time(value.strip()))
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return int(value * 1000)
    except (ValueError, OverflowError):
        pass
    raise InvalidInput(
        limits.unreadable_time(value, name, millis=True), field=name, code="INVALID_TIMESTAMP"
    )


def _event_context(context: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """Segment's nested context in the ingestion service's flat EventContext shape."""
    page = _object(context.get("page"))
    screen = _object(context.get("screen"))
    app = _object(context.get("app"))
    library = _object(context.get("library"))
    location = _object(context.get("location"))
    found = {
        "userAgent": context.get("userAgent"),
        "ip": context.get("ip"),
        "url": properties.get("url") or page.get("url"),
        "referrer": properties.get("referrer") or page.get("referrer"),
        "title": properties.get("title") or page.get("title"),
        "library": "/".join(str(library[k]) for k in ("name", "version") if library.get(k)),
        "appName": app.get("name"),
        "appVersion": str(app["version"]) if app.get("version") is not None else None,
        "screenWidth": screen.get("width") if isinstance(screen.get("width"), int) else None,
        "screenHeight": screen.get("height") if isinstance(screen.get("height"), int) else None,
        "location": {k: location[k] for k in ("country", "region", "city") if location.get(k)},
        "replay": context.get("replay") is True or None,
    }
    return {key: value for key, value in found.items() if value not in (None, "", {})}


def _traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Traits as user properties: flattened; `id`, `userId` and `identity` repeat the message's
    ids and are dropped (they would be refused as reserved user property names)."""
    return {
        key: value
        for key, value in flatten(traits).items()
        if key.lower() not in ("id", "userid", "identity")
    }


def flatten(value: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested objects as dotted keys (`address.city`); arrays of objects as JSON text."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and depth < FLATTEN_DEPTH:
            flat |= flatten(item, f"{name}.", depth + 1)
        elif isinstance(item, dict) or (
            isinstance(item, list) and any(isinstance(part, dict | list) for part in item)
        ):
            flat[name] = orjson.dumps(item).decode()
        else:
            flat[name] = item
    return flat


def _id(value: Any, name: str) -> str | None:
    """An id as Segment SDKs send it: a string or number; absent when null or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    raise InvalidInput(f"{name} must be a string", field=name, code="INVALID_ID")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
