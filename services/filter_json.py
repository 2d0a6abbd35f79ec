"""Filters sent as plain JSON (the GraphQL input shape) to the services' filter dataclasses.

The export routes take a filter as a JSON query parameter; GraphQL validates the shape of
its own inputs before resolvers/filters.py converts them. This module does both for JSON:
unknown keys, wrong types and unreadable times are InvalidInput naming the field, and the
result goes through the same `checked` validation as a GraphQL filter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

# services/ids.py is the id codec alone (no strawberry): ids are read as GraphQL reads them.
from services import ids, limits
from services.clock import parse_time, to_micros
from services.conditions import PropertyCondition
from services.errors import InvalidInput
from services.filters import EventCondition, EventMatch, SessionFilter, TimeRange, UserFilter

T = TypeVar("T")
CODE = "INVALID_FILTER"
SOURCES = frozenset({"WEB", "IOS", "ANDROID", "SERVER"})


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events an export lists: one user's, of one type, in a time range (all optional)."""

    user_id: str | None = None
    identity: str | None = None
    type: str | None = None
    time: TimeRange | None = None

    def checked(self, field: str = "filter") -> EventFilter:
        if self.user_id is not None and self.identity is not None:
            raise InvalidInput(
                "give at most one of userId or identity", field=f"{field}.userId", code=CODE
            )
        if self.identity is not None:
            limits.storable(self.identity, f"{field}.identity")
        if self.time is not None:
            self.time.checked(f"{field}.time")
        return self


def _object(value: Any, field: str, keys: frozenset[str]) -> Mapping[str, Any]:
    """`value` as a JSON object holding only `keys`, or InvalidInput naming the field."""
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", field=field, code=CODE)
    for key in value:
        if key not in keys:
            raise InvalidInput(
                f"unknown field; expected one of {', '.join(sorted(keys))}",
                field=f"{field}.{key}",
                code=CODE,
            )
    return value


def _typed(value: Any, kind: type | tuple[type, ...], what: str, field: str) -> Any:
    # bool is an int in Python, never in GraphQL's Int.
    if value is None or (isinstance(value, bool) and bool not in _kinds(kind)):
        ok = value is None
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise InvalidInput(f"must be {what}", field=field, code=CODE)
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _optional(
    data: Mapping[str, Any], key: str, build: Callable[[Any, str], T], field: str
) -> T | None:
    value = data.get(key)
    return None if value is None else build(value, f"{field}.{key}")


def _list(value: Any, field: str, build: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise InvalidInput("must be a JSON array", field=field, code=CODE)
    return tuple(build(item, f"{field}[{index}]") for index, item in enumerate(value))


def _text(value: Any, field: str) -> str:
    return str(_typed(value, str, "a string", field))


def _moment(value: Any, field: str) -> int:
    text = _text(value, field)
    try:
        return to_micros(parse_time(text))
    except (ValueError, OverflowError):
        raise InvalidInput(
            limits.unreadable_time(text, field), field=field, code="BAD_USER_INPUT"
        ) from None


def time_range(value: Any, field: str) -> TimeRange:
    """A TimeRange from `{"lastDays": n}` or `{"from": iso, "to": iso}`."""
    data = _object(value, field, frozenset({"lastDays", "from", "to"}))
    last_days = data.get("lastDays")
    _typed(last_days, int, "an integer", f"{field}.lastDays") if last_days is not None else None
    return TimeRange(
        last_days=last_days,
        from_us=_optional(data, "from", _moment, field),
        to_us=_optional(data, "to", _moment, field),
    )


def condition(value: Any, field: str) -> PropertyCondition:
    """A property condition `{"property", "op", "value"}` (validated by `checked` later)."""
    data = _object(value, field, frozenset({"property", "op", "value"}))
    for key in ("property", "op"):
        if key not in data:
            raise InvalidInput("is required", field=f"{field}.{key}", code=CODE)
    _text(data["op"], f"{field}.op")
    return PropertyCondition(
        _text(data["property"], f"{field}.property"), data["op"], data.get("value")
    )


def event_match(value: Any, field: str) -> EventMatch:
    data = _object(value, field, frozenset({"definitionId", "type", "where"}))
    definition = _optional(data, "definitionId", _text, field)
    return EventMatch(
        definition_id=_node_id(definition, "EventDefinition", f"{field}.definitionId"),
        type=_optional(data, "type", _text, field),
        where=_optional(data, "where", lambda v, f: _list(v, f, condition), field) or (),
    )


def event_condition(value: Any, field: str) -> EventCondition:
    data = _object(value, field, frozenset({"event", "did", "atLeast", "time"}))
    if data.get("event") is None:
        raise InvalidInput("is required", field=f"{field}.event", code=CODE)
    did = _typed(data.get("did"), bool, "true or false", f"{field}.did")
    at_least = _typed(data.get("atLeast"), int, "an integer", f"{field}.atLeast")
    return EventCondition(
        event=event_match(data["event"], f"{field}.event"),
        did=True if did is None else did,
        at_least=1 if at_least is None else at_least,
        time=_optional(data, "time", time_range, field),
    )


def user_filter(value: Any, field: str = "filter") -> UserFilter:
    """A checked UserFilter from its JSON form (None: the default filter)."""
    return _user_filter(value, field).checked(field) if value is not None else UserFilter()


def _user_filter(value: Any, field: str) -> UserFilter:
    data = _object(value, field, frozenset({"seen", "properties", "events", "anyOf", "segmentId"}))
    segment = _optional(data, "segmentId", _text, field)
    return UserFilter(
        seen=_optional(data, "seen", time_range, field),
        properties=_optional(data, "properties", lambda v, f: _list(v, f, condition), field) or (),
        events=_optional(data, "events", lambda v, f: _list(v, f, event_condition), field) or (),
        any_of=_optional(data, "anyOf", lambda v, f: _list(v, f, _user_filter), field) or (),
        segment_id=_node_id(segment, "Segment", f"{field}.segmentId"),
    )


def session_filter(value: Any, field: str = "filter") -> tuple[SessionFilter, str | None]:
    """A checked SessionFilter and the userId it names (if any) from its JSON form."""
    if value is None:
        return SessionFilter(), None
    keys = {"time", "event", "userId", "identity", "userProperties", "sources", "includeServerOnly"}
    data = _object(value, field, frozenset(keys))
    user_id = _optional(data, "userId", _text, field)
    sources = _optional(data, "sources", lambda v, f: _list(v, f, _source), field) or ()
    include = _typed(
        data.get("includeServerOnly"), bool, "true or false", f"{field}.includeServerOnly"
    )
    found = SessionFilter(
        time=_optional(data, "time", time_range, field),
        event=_optional(data, "event", event_match, field),
        user_id=None,
        identity=_optional(data, "identity", _text, field),
        user_properties=_optional(
            data, "userProperties", lambda v, f: _list(v, f, condition), field
        )
        or (),
        sources=sources,
        include_server_only=bool(include),
    )
    if user_id is not None and found.identity is not None:
        raise InvalidInput(
            "give at most one of userId or identity", field=f"{field}.userId", code=CODE
        )
    if user_id is not None:
        user_id = str(limits.user_id(user_id, f"{field}.userId"))
    if found.identity is not None:
        limits.storable(found.identity, f"{field}.identity")
    return found.checked(field), user_id


def event_filter(value: Any, field: str = "filter") -> EventFilter:
    """A checked EventFilter from its JSON form."""
    if value is None:
        return EventFilter()
    data = _object(value, field, frozenset({"userId", "identity", "type", "time"}))
    user_id = _optional(data, "userId", _text, field)
    return EventFilter(
        user_id=str(limits.user_id(user_id, f"{field}.userId")) if user_id is not None else None,
        identity=_optional(data, "identity", _text, field),
        type=_optional(data, "type", _text, field),
        time=_optional(data, "time", time_range, field),
    ).checked(field)


def _source(value: Any, field: str) -> str:
    if value not in SOURCES:
        raise InvalidInput(f"must be one of {', '.join(sorted(SOURCES))}", field=field, code=CODE)
    return str(value)


def _node_id(value: str | None, kind: str, field: str) -> int | None:
    """The number inside a global id of `kind` (services/ids.py's form), or InvalidInput."""
    if value is None:
        return None
    decoded = ids.decode(value, kind)
    if decoded is None or len(decoded[1]) != 1:
        raise InvalidInput(f"not an id of a {kind}", field=field, code=CODE)
    return decoded[1][0]
