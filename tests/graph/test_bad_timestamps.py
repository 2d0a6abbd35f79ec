"""A timestamp that is no date-time refuses its own event, never the batch; elsewhere a bad
DateTime argument is a BAD_USER_INPUT error naming it. Read back through the API."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLScalarType, get_named_type

from graph import input_conversion
from graph.schema import schema
from tests.support import USER_TIMELINE, Api

UNREADABLE = ["not-a-date", "2026-02-30T10:00:00Z", "2026-03-02T25:00:00Z", "", "10:00"]
INTERNALS = ("invalid literal", "int()", "base 10", "Traceback", "ValueError", "isoparse")
# Variables coerced by graph/variables.py, and by graphql-core itself: a variable left to its
# default makes graph/variables.py hand over.
FAST = "mutation($events: [TrackInput!]!, $yes: Boolean!)"
GRAPHQL_CORE = "mutation($events: [TrackInput!]!, $yes: Boolean = true)"
BATCH = """{ trackBatch(events: $events) @include(if: $yes) {
  accepted errors { index field code message } } }"""


def _event(n: int, timestamp: Any) -> dict[str, Any]:
    return {"event": "e", "userId": "7", "timestamp": timestamp, "properties": {"n": n}}


async def _stored(api: Api, user_id: str = "7") -> list[tuple[int, str]]:
    """(n, time) of the user's events, in time order."""
    user = (await api.gql(USER_TIMELINE, userId=user_id))["user"]
    if user is None:
        return []
    events = [
        edge["node"]
        for session in user["sessions"]["edges"]
        for edge in session["node"]["events"]["edges"]
    ]
    return sorted(((e["properties"]["n"], e["time"]) for e in events), key=lambda e: e[1])


def _plain(message: str) -> None:
    """The message says what is accepted, in plain words, without Python internals."""
    assert "ISO 8601" in message and "2026-03-02T10:00:00Z" in message, message
    assert "without an offset the time is UTC" in message, message
    assert not any(word in message for word in INTERNALS), message


@pytest.mark.parametrize("head", [FAST, GRAPHQL_CORE], ids=["fast path", "graphql-core"])
async def test_bad_timestamps_in_variables_refuse_only_their_events(api: Api, head: str) -> None:
    events = [_event(0, "2026-03-02T10:00:00Z")]
    events += [_event(n, text) for n, text in enumerate(UNREADABLE, 1)]
    events += [_event(len(events), 42), _event(len(events) + 1, "2026-03-02T10:05:00+02:00")]
    events += [_event(len(events), "2026-03-02T10:10:00")]
    yes = {"yes": True} if head == FAST else {}
    payload = (await api.gql(head + BATCH, events=events, **yes))["trackBatch"]
    assert payload["accepted"] == 3
    refused = list(range(1, len(UNREADABLE) + 2))
    assert [(e["index"], e["field"], e["code"]) for e in payload["errors"]] == [
        (n, "timestamp", "INVALID_TIMESTAMP") for n in refused
    ]
    for error in payload["errors"]:
        _plain(error["message"])
    assert "'2026-02-30T10:00:00Z'" in payload["errors"][1]["message"]
    # With an offset: converted to UTC; without one: read as UTC.
    n_last = len(events) - 1
    assert await _stored(api) == [
        (n_last - 1, "2026-03-02T08:05:00+00:00"),
        (0, "2026-03-02T10:00:00+00:00"),
        (n_last, "2026-03-02T10:10:00+00:00"),
    ]


async def test_bad_timestamps_in_literals_refuse_only_their_events(api: Api) -> None:
    body = await api.raw(
        """mutation { trackBatch(events: [
          {event: "e", userId: "7", timestamp: "not-a-date", properties: {n: 0}},
          {event: "e", userId: "7", timestamp: "2026-03-02T10:00:00Z", properties: {n: 1}},
          {event: "e", userId: "7", timestamp: "2026-02-30T10:00:00Z", properties: {n: 2}},
          {event: "e", userId: "7", timestamp: 1772445600000, properties: {n: 3}}
        ]) { accepted errors { index field code message } } }"""
    )
    assert "errors" not in body, body
    payload = body["data"]["trackBatch"]
    assert payload["accepted"] == 1
    assert [(e["index"], e["field"], e["code"]) for e in payload["errors"]] == [
        (0, "timestamp", "INVALID_TIMESTAMP"),
        (2, "timestamp", "INVALID_TIMESTAMP"),
        (3, "timestamp", "INVALID_TIMESTAMP"),
    ]
    for error in payload["errors"]:
        _plain(error["message"])
    assert await _stored(api) == [(1, "2026-03-02T10:00:00+00:00")]


TRACK = """mutation($input: TrackInput!) {
  track(input: $input) { accepted event { time } errors { index field code message } } }"""
IDENTIFY = """mutation($input: IdentifyInput!) {
  identify(input: $input) { merged user { identity } errors { index field code message } } }"""


async def test_track_and_identify_refuse_an_unreadable_timestamp_in_their_payload(
    api: Api,
) -> None:
    refused = (await api.gql(TRACK, input=_event(0, "not-a-date")))["track"]
    assert (refused["accepted"], refused["event"]) == (0, None)
    [error] = refused["errors"]
    assert (error["index"], error["field"], error["code"]) == (
        None,
        "timestamp",
        "INVALID_TIMESTAMP",
    )
    _plain(error["message"])
    stored = (await api.gql(TRACK, input=_event(1, "2026-03-02T10:00:00")))["track"]
    assert stored["event"] == {"time": "2026-03-02T10:00:00+00:00"}

    identify = {"userId": "7", "identity": "kim@example.com", "timestamp": "2026-02-30T10:00:00Z"}
    payload = (await api.gql(IDENTIFY, input=identify))["identify"]
    assert payload["user"] is None
    [error] = payload["errors"]
    assert (error["field"], error["code"]) == ("timestamp", "INVALID_TIMESTAMP")
    _plain(error["message"])
    user = (await api.gql(USER_TIMELINE, userId="7"))["user"]
    assert user["identity"] is None
    fixed = await api.gql(IDENTIFY, input={**identify, "timestamp": "2026-03-02T11:00:00"})
    assert fixed["identify"]["user"] == {"identity": "kim@example.com"}


USERS = "query($filter: UserFilter) { users(filter: $filter) { totalCount } }"


def _refusal(body: dict[str, Any], field: str) -> None:
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert error["message"].startswith(field + " "), error
    _plain(error["message"])


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ('{ users(filter: {seen: {from: "not-a-date"}}) { totalCount } }', {}, "filter.seen.from"),
        (USERS, {"filter": {"seen": {"to": "2026-02-30T10:00:00Z"}}}, "filter.seen.to"),
        (
            USERS,
            {"filter": {"anyOf": [{"events": [{"event": {"type": "e"}, "time": {"from": "x"}}]}]}},
            "filter.anyOf[0].events[0].time.from",
        ),
        (
            "query($f: UserFilter, $yes: Boolean = true) {"
            " users(filter: $f) @include(if: $yes) { totalCount } }",
            {"f": {"seen": {"from": "yesterday"}}},
            "filter.seen.from",
        ),
        (
            '{ users(filter: {anyOf: [{}, {seen: {to: "2026-02-30"}}]}) { totalCount } }',
            {},
            "filter.anyOf[1].seen.to",
        ),
        (
            '{ sessions(filter: {time: {from: "2026-13-01"}}) { totalCount } }',
            {},
            "filter.time.from",
        ),
        ('{ eventNames(time: {to: "soon"}) { type } }', {}, "time.to"),
    ],
)
async def test_other_datetime_arguments_refuse_bad_values_naming_them(
    api: Api, query: str, variables: dict[str, Any], field: str
) -> None:
    _refusal(await api.raw(query, **variables), field)


async def test_a_nested_field_with_a_bad_time_range_fails_alone(api: Api) -> None:
    await api.track_batch([_event(0, "2026-03-02T10:00:00Z")])
    body = await api.raw(
        '{ user(userId: "7") { sessions(filter: {time: {from: "x"}}) { totalCount } } }'
    )
    assert body["data"] == {"user": None}, body  # the nullable user takes the error
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "filter.time.from"}
    assert error["path"] == ["user", "sessions"]
    _plain(error["message"])
    # Readable values in the same places work; without an offset they are UTC.
    found = await api.gql(
        """{ users(filter: {seen: {from: "2026-03-02T09:59:59", to: "2026-03-02T10:00:00"}}) {
          totalCount }
          user(userId: "7") { sessions(filter: {time: {from: "2026-03-02T12:00:00+02:00"}}) {
          totalCount } } }"""
    )
    assert found == {"users": {"totalCount": 1}, "user": {"sessions": {"totalCount": 1}}}
    later = await api.gql('{ users(filter: {seen: {from: "2026-03-02T10:00:01"}}) { totalCount } }')
    assert later == {"users": {"totalCount": 0}}


async def test_a_segment_with_an_unreadable_time_is_not_saved(api: Api) -> None:
    body = await api.raw(
        """mutation { createSegment(input: {name: "s", filter: {seen: {from: "not-a-date"}}}) {
          segment { id } errors { code } } }"""
    )
    _refusal(body, "input.filter.seen.from")
    assert (await api.gql("{ segments { id } }"))["segments"] == []


def test_every_datetime_input_is_checked() -> None:
    """Each input field of type DateTime is checked per item or belongs to an input class
    installed in graph/input_conversion.py (which refuses an unreadable time while building it;
    with the fast paths off, graph/arguments.time_range does); no field takes a DateTime
    argument directly (it would reach the resolver unchecked)."""
    graphql_schema = schema._schema
    seen = []
    for type_ in graphql_schema.type_map.values():
        if isinstance(type_, GraphQLInputObjectType) and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                if get_named_type(field.type).name == "DateTime":
                    definition = schema.get_type_by_name(type_.name)
                    assert definition.origin in input_conversion.INSTALLED, type_.name
                    seen.append(f"{type_.name}.{name}")
        if hasattr(type_, "fields") and not isinstance(type_, GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                for argument_name, argument in field.args.items():
                    named = get_named_type(argument.type)
                    assert not (
                        isinstance(named, GraphQLScalarType) and named.name == "DateTime"
                    ), f"{type_.name}.{field_name}({argument_name}:)"
    assert sorted(seen) == [
        "IdentifyInput.timestamp",
        "TimeRange.from",
        "TimeRange.to",
        "TrackInput.timestamp",
    ]


def test_the_schema_says_what_an_offset_less_time_means() -> None:
    printed = schema.as_str()
    assert "without an offset is read as UTC" in printed
    track = schema._schema.type_map["TrackInput"]
    assert isinstance(track, GraphQLInputObjectType)
    assert "without an offset: UTC" in (track.fields["timestamp"].description or "")
