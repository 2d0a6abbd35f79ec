"""The input limits of SPEC §1 and §3: each check returns a clean value or raises InvalidInput.

Length: every input limit with its reason, in one place a reader can scan (a block per
concern: items, properties, filters, definitions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson

from services.clock import DAY_US, MAX_USER_ID, UnreadableTime, parse_time, to_micros
from services.errors import InvalidInput

T = TypeVar("T")

MAX_BATCH = 1000
MAX_NAME = 1024
MAX_KEY = 1024
MAX_VALUE = 1024
MAX_USER_VALUE = 255
MAX_HIERARCHY = 4096
MAX_IDENTITY = 255
MAX_CONTEXT_VALUE = 4096
MAX_SHORT = 255
# Properties per event: Segment allows 10,000; real events carry tens (autocapture ~10, the
# largest demo event 15). 1,000 leaves room for any honest schema, keeps each stored event
# under ~2 MB even at the per-value limits, and stops a client that writes ids into keys
# (a new key per user or order) at its first event instead of after millions of keys.
MAX_EVENT_PROPERTIES = 1000
# Custom properties per user, per call and stored (Email and the Initial ones not counted),
# and their size as stored JSON: a user is shown whole in `users { properties }`, so a page
# of 100 users stays under ~13 MB however its users were written.
MAX_USER_PROPERTIES = 1000
MAX_USER_PROPERTY_BYTES = 128 * 1024
EARLIEST_US = to_micros(datetime(2000, 1, 1))
TIME_FORMS = (
    "ISO 8601 / RFC 3339, e.g. 2026-03-02T10:00:00Z or 2026-03-02T12:00:00+02:00 "
    "(without an offset the time is UTC)"
)
SOURCES = ("WEB", "IOS", "ANDROID", "SERVER")
PLACEHOLDER_IDENTITIES = {"null", "undefined", "anonymous", "0", "", "[object object]"}
RESERVED_USER_KEYS = {"id", "userid", "identity"}
LONG_VALUE_KEYS = {"hierarchy": MAX_HIERARCHY}

# Event definitions (issue 17): matching runs for every ingested event, so what a definition
# may ask is bounded. Criteria and conditions per definition: services/matching.py.
MAX_DEFINITIONS = 500  # per environment
MAX_SELECTOR_LENGTH = 1024  # characters of one criterion's selector (list)
MAX_SELECTOR_ALTERNATIVES = 20  # comma-separated selectors in one criterion
MAX_SELECTOR_COMBINATORS = 64  # descendant/child steps in one selector (also inside :not())


def event_name(value: Any, field: str = "event") -> str:
    """An event name: a string of 1..1024 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            "event name must be a non-empty string", field=field, code="INVALID_EVENT_NAME"
        )
    if len(value) > MAX_NAME:
        raise InvalidInput(
            f"event name is {len(value)} characters; the limit is {MAX_NAME}",
            field=field,
            code="EVENT_NAME_TOO_LONG",
        )
    return value


def user_id(value: Any, field: str = "userId") -> int:
    """A userId: a numeric string (or integer) in 0 .. 2^53-1."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput("userId must be a numeric string", field=field, code="INVALID_USER_ID")
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 16 or int(text) > MAX_USER_ID:
        raise InvalidInput(
            f"userId must be a whole number from 0 to {MAX_USER_ID}, got {text!r:.40}",
            field=field,
            code="INVALID_USER_ID",
        )
    return int(text)


def identity(value: Any, field: str = "identity") -> str:
    """An identity: 1..255 characters, not a placeholder such as 'null' or 'anonymous'."""
    if not isinstance(value, str):
        raise InvalidInput("identity must be a string", field=field, code="INVALID_IDENTITY")
    if value.strip().lower() in PLACEHOLDER_IDENTITIES:
        raise InvalidInput(
            f"identity {value!r} is a placeholder; it would merge unrelated people into one user",
            field=field,
            code="INVALID_IDENTITY",
        )
    if len(value) > MAX_IDENTITY:
        raise InvalidInput(
            f"identity is {len(value)} characters; the limit is {MAX_IDENTITY}",
            field=field,
            code="INVALID_IDENTITY",
        )
    return value


def short_text(value: Any, field: str, code: str, limit: int = MAX_SHORT) -> str:
    """A non-empty string of at most `limit` characters (session ids, idempotency keys)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string", field=field, code=code)
    if len(value) > limit:
        raise InvalidInput(
            f"{field} is {len(value)} characters; the limit is {limit}", field=field, code=code
        )
    return value


def source(value: Any, field: str = "source") -> str:
    if value not in SOURCES:
        raise InvalidInput(
            f"source must be one of {', '.join(SOURCES)}", field=field, code="INVALID_SOURCE"
        )
    return str(value)


def timestamp(value: Any, *, received_us: int, field: str = "timestamp") -> int:
    """Event time in µs: ISO 8601 (naive = UTC), a datetime, or epoch milliseconds; absent = now."""
    if value is None:
        return received_us
    if isinstance(value, datetime):
        micros = to_micros(value)
    elif isinstance(value, UnreadableTime):  # the DateTime scalar could not read it
        raise InvalidInput(
            unreadable_time(value.sent, field), field=field, code="INVALID_TIMESTAMP"
        )
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        micros = int(value * 1000)
    elif isinstance(value, str):
        try:
            micros = to_micros(parse_time(value.strip()))
        except (ValueError, OverflowError):
            raise InvalidInput(
                unreadable_time(value, field, millis=True), field=field, code="INVALID_TIMESTAMP"
            ) from None
    else:
        raise InvalidInput(
            unreadable_time(value, field, millis=True), field=field, code="INVALID_TIMESTAMP"
        )
    if micros < EARLIEST_US:
        raise InvalidInput(
            f"{field} is before 2000-01-01; older events are not stored",
            field=field,
            code="INVALID_TIMESTAMP",
        )
    if micros > received_us + DAY_US:
        raise InvalidInput(
            f"{field} is more than a day in the future; check the sender's clock",
            field=field,
            code="INVALID_TIMESTAMP",
        )
    return micros


def unreadable_time(value: Any, field: str, *, millis: bool = False) -> str:
    """What to tell a caller who sent `value` as a date-time that is none."""
    accepted = TIME_FORMS + (", or a number of milliseconds since 1970-01-01 UTC" if millis else "")
    return f"{field} {value!r:.60} is not a valid date and time; give {accepted}"


def properties(
    value: Any,
    *,
    field: str = "properties",
    value_limit: int = MAX_VALUE,
    reserved: frozenset[str] | set[str] = frozenset(),
    most: int = MAX_EVENT_PROPERTIES,
    per: str = "event",
) -> dict[str, Any]:
    """Flat properties: string keys; string, number or boolean values; arrays joined with '||'.

    Null values are dropped (as Heap does); nested objects are refused; more than `most`
    keys are refused before any is looked at.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("properties must be an object", field=field, code="INVALID_PROPERTIES")
    if len(value) > most:
        raise InvalidInput(
            f"{field} holds {len(value)} properties; the limit is {most} per {per}",
            field=field,
            code="TOO_MANY_PROPERTIES",
        )
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(
                "property names must be non-empty strings",
                field=f"{field}.{key}" if isinstance(key, str) else field,
                code="INVALID_PROPERTY_NAME",
            )
        if len(key) > MAX_KEY:
            raise InvalidInput(
                f"property name is {len(key)} characters; the limit is {MAX_KEY}",
                field=f"{field}.{key[:40]}…",
                code="PROPERTY_NAME_TOO_LONG",
            )
        if reserved and key.lower() in reserved:
            raise InvalidInput(
                f"property {key!r} is reserved; use the {key} argument instead",
                field=f"{field}.{key}",
                code="RESERVED_PROPERTY",
            )
        if item is None:
            continue
        if type(item) is str and len(item) <= value_limit:  # the usual case, checked quickly
            clean[key] = item
            continue
        clean[key] = _scalar(item, f"{field}.{key}", LONG_VALUE_KEYS.get(key, value_limit))
    return clean


def _scalar(item: Any, where: str, limit: int) -> Any:
    if isinstance(item, list | tuple):
        parts = [_scalar(part, where, limit) for part in item if part is not None]
        item = "||".join(_text(part) for part in parts)
    if isinstance(item, bool):
        return item
    if isinstance(item, int):
        if abs(item) > 2**63 - 1:
            raise InvalidInput("number is too large", field=where, code="INVALID_PROPERTY_VALUE")
        return item
    if isinstance(item, float):
        if not math.isfinite(item):
            raise InvalidInput("numbers must be finite", field=where, code="INVALID_PROPERTY_VALUE")
        return item
    if isinstance(item, str):
        if len(item) > limit:
            raise InvalidInput(
                f"value is {len(item)} characters; the limit is {limit}",
                field=where,
                code="PROPERTY_TOO_LONG",
            )
        return item
    raise InvalidInput(
        "values must be strings, numbers, booleans or arrays of them",
        field=where,
        code="INVALID_PROPERTY_VALUE",
    )


def _text(part: Any) -> str:
    if isinstance(part, bool):
        return "true" if part else "false"
    return str(part)


def user_properties(value: Any, field: str = "properties") -> dict[str, Any]:
    """User properties: as event properties, values up to 255 characters, id keys reserved."""
    return properties(
        value,
        field=field,
        value_limit=MAX_USER_VALUE,
        reserved=RESERVED_USER_KEYS,
        most=MAX_USER_PROPERTIES,
        per="call",
    )


def stored_user_properties(
    current: Mapping[str, Any], update: Mapping[str, Any], field: str = "properties"
) -> dict[str, Any]:
    """A user's custom properties after `update` overwrites theirs per key, or InvalidInput
    (TOO_MANY_PROPERTIES) when that takes them over MAX_USER_PROPERTIES keys or
    MAX_USER_PROPERTY_BYTES of JSON. An update that grows nothing (overwriting keys with values
    no longer) is always allowed, so a user stored over a limit can still be corrected."""
    after = {**current, **update}
    if len(after) > MAX_USER_PROPERTIES and len(after) > len(current):
        raise InvalidInput(
            f"the user would have {len(after)} properties ({len(after) - len(current)} new); "
            f"the limit is {MAX_USER_PROPERTIES} per user: overwrite existing properties "
            "instead of adding new ones",
            field=field,
            code="TOO_MANY_PROPERTIES",
        )
    size = len(orjson.dumps(after))
    if size > MAX_USER_PROPERTY_BYTES and size > len(orjson.dumps(current)):
        raise InvalidInput(
            f"the user's properties would take {size} bytes as JSON; the limit is "
            f"{MAX_USER_PROPERTY_BYTES} ({MAX_USER_PROPERTY_BYTES // 1024} KiB) per user",
            field=field,
            code="TOO_MANY_PROPERTIES",
        )
    return after


def merged_user_properties(kept: Mapping[str, Any], merged_in: Mapping[str, Any]) -> dict[str, Any]:
    """The properties of two users merged into one (SPEC §1): every one of `kept` (the
    identified user's: its values win), then those of `merged_in` it lacks, in name order,
    while the user stays within MAX_USER_PROPERTIES and MAX_USER_PROPERTY_BYTES. A merge never
    fails over the limits; what does not fit of the merged-in user's is dropped."""
    result = dict(kept)
    extra = sorted(key for key in merged_in if key not in kept)
    if not extra:
        return result
    size = len(orjson.dumps(result))
    for key in extra:
        if len(result) >= MAX_USER_PROPERTIES:
            break
        entry = len(orjson.dumps(key)) + 1 + len(orjson.dumps(merged_in[key]))
        grown = size + entry + (1 if result else 0)  # a comma before all but the first
        if grown > MAX_USER_PROPERTY_BYTES:
            continue  # a shorter one may still fit
        result[key] = merged_in[key]
        size = grown
    return result


CONTEXT_TEXT_KEYS = (
    "userAgent",
    "ip",
    "url",
    "referrer",
    "title",
    "library",
    "appName",
    "appVersion",
)


def context(value: Any, field: str = "context") -> dict[str, Any]:
    """Event context: known string fields capped, screen sizes as integers, location kept."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("context must be an object", field=field, code="INVALID_CONTEXT")
    clean: dict[str, Any] = {}
    for key in CONTEXT_TEXT_KEYS:
        item = value.get(key)
        if item is None:
            continue
        if not isinstance(item, str) or len(item) > MAX_CONTEXT_VALUE:
            raise InvalidInput(
                f"{key} must be a string of at most {MAX_CONTEXT_VALUE} characters",
                field=f"{field}.{key}",
                code="INVALID_CONTEXT",
            )
        clean[key] = item
    for key in ("screenWidth", "screenHeight"):
        item = value.get(key)
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < 1_000_000:
            raise InvalidInput(
                f"{key} must be a positive integer", field=f"{field}.{key}", code="INVALID_CONTEXT"
            )
        clean[key] = item
    location = value.get("location")
    if location is not None:
        clean["location"] = properties(location, field=f"{field}.location", value_limit=MAX_SHORT)
    if value.get("replay") is True:
        clean["replay"] = True
    return clean


def batch_size(count: int, field: str) -> None:
    if count > MAX_BATCH:
        raise InvalidInput(
            f"a batch holds at most {MAX_BATCH} items; this one has {count}",
            field=field,
            code="BATCH_TOO_LARGE",
        )


def all_storable(*values: Any) -> bool:
    """True when no text in `values` (strings, flat mappings, None) holds what `storable`
    refuses: one JSON encoding of them all, instead of a check per string. False only means
    that some value may be refused; `storable` then names it."""
    try:
        encoded = orjson.dumps(values)
    except orjson.JSONEncodeError:  # an unpaired surrogate
        return False
    return b"\\u0000" not in encoded


def storable(value: T, field: str) -> T:
    """`value` (validated text, or flat properties) unless it holds characters no database
    stores: NUL (PostgreSQL text and JSON refuse it) or an unpaired surrogate (not UTF-8;
    GraphQL's JSON parser lets `\\ud800` through). The limits leave both to this check."""
    if isinstance(value, str):
        try:
            value.encode()
            clean = "\x00" not in value
        except UnicodeEncodeError:
            clean = False
        if not clean:
            raise InvalidInput(
                "text with a NUL character or an unpaired surrogate cannot be stored",
                field=field,
                code="INVALID_TEXT",
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            storable(key, field)  # a bad key is not repeated in the field name
            storable(item, f"{field}.{key}")
    return value


# ------------------------------------------------------------------ filter size (issue 17)
# A users filter compiles to one SQL condition per property or event condition, with every
# segment it names inlined where it is named; building and compiling that SQL runs on the
# event loop, 1-3 ms per condition (a filter of 100 took one 0.1-0.3 s slice of the loop,
# and a users page compiles it three times), and each event condition scans events.
# These bound a filter as written and as expanded, when a segment is saved and when a
# filter is compiled: a segment naming another twice per level doubles per level, so ten
# levels were a 2^10 inlined statement that grew a server to 23 GB.
# Conditions once expanded: property conditions, event conditions and their `where`
# conditions, each segment counted where it is named (as often as it is named).
MAX_FILTER_CONDITIONS = 50
# Values of IN / NOT_IN lists once expanded: each is a bound parameter of one statement, and
# SQLite and asyncpg take at most 32,766 of those.
MAX_FILTER_VALUES = 5000
# anyOf levels within one filter as written (a saved segment's filter included).
MAX_ANY_OF_DEPTH = 5
# Segments naming segments: a filter naming S1, whose filter names S2, ... at most this deep.
MAX_SEGMENT_DEPTH = 5
# Conditions one GraphQL request may compile in all (expanded, as above): thirty aliased
# `users` lists, or the `userCount` of every segment, each compile their filter.
MAX_REQUEST_FILTER_CONDITIONS = 200
# Static segments: the users one lists (a snapshot of a filter, or ids sent), and the ids one
# call may send. 100,000 members keep a snapshot to one transaction of a few MB and a member
# list one indexed range; a larger audience is a dynamic segment's job.
MAX_STATIC_SEGMENT_MEMBERS = 100_000
MAX_SEGMENT_MEMBER_IDS = MAX_BATCH  # userIds per createSegment / add / remove call
