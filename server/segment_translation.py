"""Segment messages as items of the ingestion service: pure translation, no HTTP.

A request's messages become a `Plan`: anonymousId-userId links (alias, and any message carrying
both ids, such as identify), events (track, page, screen) and traits (identify), each kept
with its message's position and Segment's names for the service's fields
(services.batch_items.Placed), so that a problem the service finds is said in Segment's terms.

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
  A timestamp that is no date-time refuses its message alone (`timestamp`,
  `originalTimestamp`, `sentAt` of that message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from services import ingest, limits
from services.batch_items import FieldNames, Placed, validated
from services.clock import parse_time, to_datetime, to_micros
from services.errors import InvalidInput, Problem
from services.links import AnonymousLink

MAX_MESSAGE = 32 * 1024
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
SEGMENT_NAMES: FieldNames = {
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
# The names of items whose fields Segment spells otherwise: an alias's anonymous id is its
# previousId, traits are the service's properties, a RudderStack event's time its
# originalTimestamp.
ALIAS_NAMES: FieldNames = {**SEGMENT_NAMES, "anonymousId": "previousId"}
TRAIT_NAMES: FieldNames = {**SEGMENT_NAMES, "properties": "traits"}
ORIGINAL_TIME_NAMES: FieldNames = {**SEGMENT_NAMES, "timestamp": "originalTimestamp"}
FLATTEN_DEPTH = 4  # deeper objects are kept as JSON text


@dataclass(slots=True)
class Plan:
    """What a request's messages ask of the ingestion service, each item at its message."""

    links: Placed[AnonymousLink] = field(default_factory=Placed)
    events: Placed[ingest.TrackItem] = field(default_factory=Placed)
    traits: Placed[ingest.UserPropertiesItem] = field(default_factory=Placed)
    problems: list[Problem] = field(default_factory=list)  # messages refused as they were read
    ignored: int = 0  # group messages: accepted, nothing to store
    seen: set[tuple[str, str]] = field(default_factory=set)  # (anonymousId, userId) linked

    def aliases(self) -> set[int]:
        """The positions of alias messages (an alias is accepted when its link is)."""
        return {
            position
            for position, link in zip(self.links.positions, self.links.items, strict=True)
            if link.explicit
        }


async def translate(
    messages: Sequence[Any], *, shared: Mapping[str, Any], sent_at: Any, received_us: int
) -> Plan:
    """The plan of a request's messages: `shared` is the batch's context, `sent_at` its sentAt.

    Messages are read in slices that let the event loop run (services.batch_items.validated);
    a refused message is a problem at its position, the others are planned all the same.
    """
    plan = Plan()
    _, plan.problems = await validated(
        messages,
        lambda message, index: add_message(plan, index, message, shared, sent_at, received_us),
    )
    return plan


def read_sent_at(value: Any) -> int:
    """A batch's own `sentAt` in epoch µs; raises InvalidInput naming `sentAt`."""
    return _micros(value, "sentAt")


def add_message(
    plan: Plan,
    index: int,
    message: Any,
    shared: Mapping[str, Any],
    batch_sent_at: Any,
    received_us: int,
) -> None:
    """Add what one message asks for to the plan, or raise the reason it is refused.

    Its ids are checked before its link is added; the link of a message whose event is then
    refused here (an unreadable timestamp or messageId) is made all the same."""
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
        plan.links.add(AnonymousLink(previous, user_id, explicit=True), index, ALIAS_NAMES)
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
        plan.links.add(AnonymousLink(anonymous_id, user_id), index, SEGMENT_NAMES)
    who = {"identity": user_id} if user_id is not None else {"anonymous_id": anonymous_id}
    context = {**shared, **_object(message.get("context"))}
    if kind == "identify":
        traits = {**_object(context.get("traits")), **_object(message.get("traits"))}
        traits_item = ingest.UserPropertiesItem(properties=_traits(traits), **who)
        plan.traits.add(traits_item, index, TRAIT_NAMES)
    elif kind in EVENT_TYPES:
        event = _event(kind, message, context, who, batch_sent_at, received_us)
        original = time_field(message) == "originalTimestamp"
        plan.events.add(event, index, ORIGINAL_TIME_NAMES if original else SEGMENT_NAMES)
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
