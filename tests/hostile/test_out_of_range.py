"""Forged ids, cursors and numbers out of range: not found or BAD_USER_INPUT, never an error log.

services/ids.py refuses numbers that do not fit their column (64-bit, 32-bit for definitions and
segments); before, PostgreSQL refused the SQL parameter and the request logged a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from services import ids
from tests.support import Api

HUGE = (2**63, 2**64, -(2**63) - 1, 10**30)
WIDE = (2**31, 2**32)

NODE = "query($id: ID!) { node(id: $id) { id } }"


@pytest.fixture
def errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The ERROR records logged while the test runs (the server runs in this process)."""
    caplog.set_level(logging.INFO)
    records: list[logging.LogRecord] = []
    yield records
    records += [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not records, [r.getMessage() for r in records]


async def _seed(api: Api) -> dict[str, str]:
    """A user with a session and an event; the real ids of each."""
    data = await api.gql(
        """mutation { track(input: {event: "pageview", userId: "5", source: WEB}) {
             event { id session { id user { id } } } } }"""
    )
    event = data["track"]["event"]
    return {
        "Event": event["id"],
        "Session": event["session"]["id"],
        "User": event["session"]["user"]["id"],
    }


@pytest.mark.parametrize(
    ("kind", "parts"),
    [
        *[("User", (n,)) for n in HUGE],
        *[("Session", (n, 1)) for n in HUGE],
        *[("Session", (5, n)) for n in HUGE],
        *[("Event", (n, 1)) for n in HUGE],
        *[("Event", (5, n)) for n in HUGE],
        *[("EventDefinition", (n,)) for n in WIDE + HUGE],
        *[("Segment", (n,)) for n in WIDE + HUGE],
    ],
)
async def test_a_forged_node_id_out_of_range_is_not_found(
    api: Api, errors_logged: list[logging.LogRecord], kind: str, parts: tuple[int, ...]
) -> None:
    await _seed(api)
    body = await api.raw(NODE, id=ids.encode(kind, *parts))
    assert body == {"data": {"node": None}}


async def test_ids_in_range_still_resolve(api: Api, errors_logged: list[logging.LogRecord]) -> None:
    for kind, value in (await _seed(api)).items():
        body = await api.raw(
            f"query($id: ID!) {{ node(id: $id) {{ ... on {kind} {{ id }} }} }}", id=value
        )
        assert body == {"data": {"node": {"id": value}}}


CURSORS = [
    ("query($c: String) { users(after: $c) { edges { cursor } } }", "uc", 3),
    ("query($c: String) { sessions(after: $c) { edges { cursor } } }", "sp", 3),
    (
        """query($c: String) { user(userId: "5") { sessions(first: 5, after: $c) {
             edges { cursor } } } }""",
        "sc",
        2,
    ),
    (
        """query($c: String) { user(userId: "5") { sessions(first: 5) { edges { node {
             events(first: 5, after: $c) { edges { cursor } } } } } } }""",
        "ec",
        2,
    ),
]


@pytest.mark.parametrize(("query", "kind", "size"), CURSORS)
@pytest.mark.parametrize("number", HUGE)
async def test_a_forged_cursor_out_of_range_is_bad_user_input(
    api: Api,
    errors_logged: list[logging.LogRecord],
    query: str,
    kind: str,
    size: int,
    number: int,
) -> None:
    await _seed(api)
    for position in range(size):
        parts = [1] * size
        parts[position] = number
        body = await api.raw(query, c=ids.encode(kind, *parts))
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"]["field"] == "after", error


@pytest.mark.parametrize("number", ["9007199254740992", "18446744073709551616", "-1", "1e400"])
async def test_a_user_id_argument_out_of_range_names_it(
    api: Api, errors_logged: list[logging.LogRecord], number: str
) -> None:
    for query, field in [
        ("query($u: String) { user(userId: $u) { id } }", "userId"),
        (
            "query($u: String) { sessions(filter: {userId: $u}) { edges { cursor } } }",
            "filter.userId",
        ),
    ]:
        body = await api.raw(query, u=number)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_USER_ID", error
        assert error["extensions"]["field"] == field, error


@pytest.mark.parametrize("op", ["EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN"])
async def test_a_number_that_overflows_in_a_filter_names_it(
    api: Api, errors_logged: list[logging.LogRecord], op: str
) -> None:
    await _seed(api)
    body = await api.raw(
        f"""{{ users(filter: {{properties: [{{property: "n", op: {op}, value: 1e400}}]}}) {{
              edges {{ cursor }} }} }}"""
    )
    (error,) = body["errors"]
    assert error["extensions"]["field"] == "filter.properties[0].value", error
    assert error["extensions"]["code"] in ("BAD_USER_INPUT", "INVALID_VALUE"), error


@pytest.mark.parametrize("number", [*HUGE, *WIDE])
async def test_forged_filter_ids_out_of_range_name_the_field(
    api: Api, errors_logged: list[logging.LogRecord], number: int
) -> None:
    await _seed(api)
    for query, field in [
        (
            "query($s: ID) { users(filter: {segmentId: $s}) { edges { cursor } } }",
            "filter.segmentId",
        ),
        (
            """query($s: ID) { users(filter: {events: [{event: {definitionId: $s}}]}) {
                 edges { cursor } } }""",
            "filter.events[0].event.definitionId",
        ),
    ]:
        kind = "Segment" if "segmentId" in query else "EventDefinition"
        body = await api.raw(query, s=ids.encode(kind, number))
        (error,) = body["errors"]
        assert error["extensions"]["field"] == field, error


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, -(2**64)])
@pytest.mark.parametrize("op", ["EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN"])
async def test_a_whole_number_beyond_64_bits_in_a_filter_is_compared_not_sent_raw(
    api: Api, errors_logged: list[logging.LogRecord], value: int, op: str
) -> None:
    await _seed(api)
    added = await api.gql(
        'mutation { addUserProperties(input: {userId: "5", properties: {n: 7}}) '
        "{ errors { code } } }"
    )
    assert added["addUserProperties"]["errors"] == []
    body = await api.raw(
        """query($c: [PropertyCondition!]) { users(filter: {properties: $c}) {
             edges { node { userId } } } }""",
        c=[{"property": "n", "op": op, "value": value}],
    )
    assert "errors" not in body, body
    listed = [e["node"]["userId"] for e in body["data"]["users"]["edges"]]
    holds = {
        "EQUALS": 7 == value,
        "NOT_EQUALS": 7 != value,
        "GREATER_THAN": 7 > value,
        "LESS_THAN": 7 < value,
    }[op]
    assert listed == (["5"] if holds else [])
