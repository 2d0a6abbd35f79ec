"""Hostile input never breaks the server (issue 8): hypothesis writes the requests.

GraphQL trackBatch variables, Heap and Segment payloads with wrong types, huge strings,
deeply nested properties, NUL characters and lone surrogates, invalid UTF-8 bytes, NaN and
Infinity literals, far-future and pre-1970 timestamps, huge numbers, corrupt gzip. Whatever
comes, the server answers below 500, stores exactly the events it says it accepted (never
a part of an item), and keeps answering a normal query.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import Event
from tests.conftest import RunningServer
from tests.support import TRACK_BATCH

EXAMPLES = settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
USERS = "query { users(first: 3) { edges { node { userId eventCount } } } }"
EVENT_TYPES = ("track", "page", "screen")

# ------------------------------------------------------------------------ strategies

# Strings a client may send that a database may not store (NUL), that sit at the limits,
# or that are placeholders and look-alikes; lone surrogates (which make a JSON body invalid
# for the Heap and Segment routes, but not for GraphQL) come rarely, not to mask the rest.
NASTY_STRINGS = (
    "\x00",
    "a\x00b",
    "null",
    "Anonymous",
    "",
    " ",
    "\u202e",
    "😀" * 300,
    "x" * 255,
    "x" * 256,
    "é" * 1024,
    "é" * 1025,
    "x" * 4097,
    "\x00" * 300,
)
SURROGATES = ("\ud800", "x\udfffy")
nasty_strings = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(NASTY_STRINGS),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Co", "Zs"]), min_size=1, max_size=5),
    st.integers(30_000, 120_000).map(lambda n: "y" * n),
    st.sampled_from(SURROGATES),
)
hostile_text = st.one_of(st.text(max_size=20), nasty_strings)
huge_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, 1e306]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), huge_numbers, hostile_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)

# A placeholder the body writer replaces by an object or array nested `depth` deep
# (json.dumps cannot write what is deeper than the interpreter's stack).
DEEP = re.compile(r'"__deep_(\d+)_(object|array)__"')
deep_values = st.builds(
    "__deep_{}_{}__".format, st.integers(3, 2500), st.sampled_from(["object", "array"])
)


def _nested(match: re.Match[str]) -> str:
    depth = int(match.group(1))
    if match.group(2) == "array":
        return "[" * depth + '"bottom"' + "]" * depth
    return '{"deeper": ' * depth + '"bottom"' + "}" * depth


recent = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat())
timestamps = st.one_of(
    recent,
    recent,
    recent,
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "2999-01-01T00:00:00+00:00",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2026-13-45T99:99:99Z",
            "yesterday",
            "",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    huge_numbers,
)
values = st.one_of(json_values, deep_values, timestamps)
flat_properties = st.dictionaries(hostile_text, scalars, max_size=5)
properties = st.one_of(flat_properties, flat_properties, flat_properties, json_values, deep_values)
text_or_nasty = lambda *plain: st.one_of(st.sampled_from(plain), nasty_strings)  # noqa: E731
_ABSENT = object()


@st.composite
def _item(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> Any:
    """A plausible item (often storable, with nasty strings inside), then up to two of its
    fields replaced by anything at all or removed; now and then not an object at all."""
    if draw(st.integers(0, 15)) == 0:
        return draw(values)
    item = {name: draw(strategy) for name, strategy in fields.items()}
    for name, strategy in (optional or {}).items():
        if draw(st.booleans()):
            item[name] = draw(strategy)
    for name in draw(st.lists(st.sampled_from(sorted(item)), max_size=2, unique=True)):
        replacement = draw(st.one_of(st.just(_ABSENT), values))
        if replacement is _ABSENT:
            del item[name]
        else:
            item[name] = replacement
    return item


graphql_events = _item(
    {
        "event": text_or_nasty("pageview", "Invoice Paid", "click"),
        "userId": st.sampled_from(["42", "43", "9007199254740991", "9007199254740992"]),
        "source": st.sampled_from(["WEB", "IOS", "SERVER"]),
        "timestamp": timestamps,
        "properties": properties,
    },
    {
        "identity": text_or_nasty("alice@example.com"),
        "sessionId": text_or_nasty("s1"),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "url": text_or_nasty("https://shop.example.com/a?utm_source=x&q=%00"),
                "userAgent": text_or_nasty("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"),
                "screenWidth": huge_numbers,
                "location": flat_properties,
            },
        ),
        "idempotencyKey": st.one_of(st.uuids().map(str), nasty_strings),
    },
)
heap_events = _item(
    {
        "event": text_or_nasty("Invoice Paid", "Signed Up"),
        "identity": st.one_of(text_or_nasty("alice@example.com", "bob"), st.just(42)),
        "timestamp": timestamps,
        "properties": properties,
    },
    {
        "idempotency_key": st.one_of(st.uuids().map(str), nasty_strings),
        "user_id": st.sampled_from(["42", "-1", "1e3"]),
    },
)
heap_users = _item(
    {
        "identity": st.one_of(text_or_nasty("alice@example.com", "bob"), st.just(42)),
        "properties": properties,
    },
    {"user_id": st.sampled_from(["42", "43"])},
)
segment_messages = _item(
    {
        "type": st.sampled_from(["track", "page", "screen", "identify", "alias", "group", "x"]),
        "event": text_or_nasty("Signed Up", "Order Completed"),
        "messageId": st.one_of(st.uuids().map(str), nasty_strings),
        "timestamp": timestamps,
        "properties": properties,
    },
    {
        "userId": st.one_of(text_or_nasty("alice@example.com", "bob"), st.just(7)),
        "anonymousId": st.one_of(text_or_nasty("anon-1", "anon-2"), st.just(3.5)),
        "previousId": text_or_nasty("anon-1", "alice@example.com"),
        "sentAt": timestamps,
        "traits": properties,
        "context": st.fixed_dictionaries(
            {},
            optional={
                "library": st.one_of(st.just({"name": "analytics.js"}), values),
                "page": st.one_of(st.just({"url": "https://a.example/p"}), values),
                "campaign": st.one_of(flat_properties, values),
                "device": values,
                "traits": properties,
            },
        ),
    },
)


DAMAGES = ("utf-8", "truncate", "gzip", "bad-gzip")
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x8b")


@st.composite
def bodies(
    draw: st.DrawFn, payload: st.SearchStrategy[Any], damages: tuple[str, ...] = DAMAGES
) -> tuple[bytes, dict[str, str]]:
    """The payload as JSON text (NaN and Infinity as literals), sometimes damaged or gzipped."""
    text = json.dumps(draw(payload), allow_nan=True, ensure_ascii=draw(st.booleans()))
    text = DEEP.sub(_nested, text)
    body = text.encode("utf-8", "surrogatepass")
    headers = {"content-type": "application/json"}
    damage = draw(st.sampled_from(["none"] * 16 + list(damages)))
    if damage == "utf-8":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from(INVALID_UTF8)) + body[at:]
    elif damage == "truncate":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif damage in ("gzip", "bad-gzip"):
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
        if damage == "bad-gzip":
            body = body[: len(body) // 2]
    return body, headers


# --------------------------------------------------------------------------- checks


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client


async def _events(server: RunningServer) -> int:
    async with server.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(Event.__table__)) or 0)


async def _still_serving(http: httpx.AsyncClient) -> None:
    answer = await http.post("/graphql", json={"query": USERS})
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


def _decoded(response: httpx.Response) -> Any:
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/"), response.headers
    return response.json()


# ---------------------------------------------------------------------------- tests


# GraphQL bodies are not gzipped; invalid UTF-8 has its own test below.
GRAPHQL_DAMAGES = ("truncate",)


@given(
    sent=st.one_of(
        bodies(
            st.fixed_dictionaries(
                {
                    "query": st.just(TRACK_BATCH),
                    "variables": st.fixed_dictionaries(
                        {"events": st.lists(graphql_events, min_size=1, max_size=6)}
                    ),
                }
            ),
            GRAPHQL_DAMAGES,
        ),
        bodies(
            st.fixed_dictionaries({"query": st.just(TRACK_BATCH), "variables": values}),
            GRAPHQL_DAMAGES,
        ),
    )
)
@EXAMPLES
async def test_graphql_track_batch_survives_hostile_variables(
    server: RunningServer, http: httpx.AsyncClient, sent: tuple[bytes, dict[str, str]]
) -> None:
    before = await _events(server)
    body = _decoded(await http.post("/graphql", content=sent[0], headers=sent[1]))
    payload = (body.get("data") or {}).get("trackBatch")
    accepted = payload["accepted"] if payload else 0
    assert await _events(server) - before == accepted, body
    await _still_serving(http)


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_graphql_refuses_invalid_utf8_and_gzip_bodies_with_a_4xx(
    http: httpx.AsyncClient, encoding: str | None
) -> None:
    body = json.dumps({"query": TRACK_BATCH, "variables": {"events": []}}).encode()
    body = body[:30] + b"\xff" + body[30:]
    headers = {"content-type": "application/json"}
    if encoding:
        body, headers["content-encoding"] = gzip.compress(body), encoding
    answer = await http.post("/graphql", content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["errors"], answer.text
    await _still_serving(http)


@given(
    route=st.sampled_from(["/api/track", "/api/add_user_properties", "/api/v1/identify"]),
    data=st.data(),
)
@EXAMPLES
async def test_heap_routes_survive_hostile_payloads(
    server: RunningServer, http: httpx.AsyncClient, route: str, data: st.DataObject
) -> None:
    bulk_key, item = {
        "/api/track": ("events", heap_events),
        "/api/add_user_properties": ("users", heap_users),
        "/api/v1/identify": (None, heap_users),
    }[route]
    app_id = st.one_of(st.just("1"), st.just(1), values)
    single = item.map(lambda i: {**i, "app_id": "1"} if isinstance(i, dict) else i)
    shapes = [single, st.fixed_dictionaries({"app_id": app_id}, optional={"x": values})]
    if bulk_key is not None:
        items = st.one_of(st.lists(item, max_size=6), values)
        shapes.append(st.fixed_dictionaries({"app_id": app_id, bulk_key: items}))
    content, headers = data.draw(bodies(st.one_of(*shapes)))
    before = await _events(server)
    body = _decoded(await http.post(route, content=content, headers=headers))
    stored = await _events(server) - before
    if route == "/api/track":
        assert stored == body.get("accepted", 0), body
    else:
        assert stored == 0, body
    await _still_serving(http)


@given(
    data=st.data(),
    batch=st.lists(segment_messages, max_size=6),
    path=st.sampled_from(["/v1/batch", "/v1/track", "/v1/identify", "/v1/alias", "/v1/page"]),
)
@EXAMPLES
async def test_segment_routes_survive_hostile_payloads(
    server: RunningServer,
    http: httpx.AsyncClient,
    data: st.DataObject,
    batch: list[Any],
    path: str,
) -> None:
    if path == "/v1/batch":
        payload: Any = {"batch": batch, "writeKey": "k", "sentAt": data.draw(timestamps)}
        if data.draw(st.booleans()):
            payload["batch"] = data.draw(values)
    else:
        payload = data.draw(segment_messages)
        if isinstance(payload, dict):
            payload["writeKey"] = data.draw(st.one_of(st.just("k"), values))
    content, headers = data.draw(bodies(st.just(payload)))
    before = await _events(server)
    body = _decoded(await http.post(path, content=content, headers=headers))
    stored = await _events(server) - before
    messages = _messages(path, payload)
    refused = {e["index"] for e in body.get("errors", [])} if "errors" in body else set()
    if "accepted" not in body:  # refused as a whole
        assert stored == 0, body
        return await _still_serving(http)
    kinds = [m.get("type") if isinstance(m, dict) else None for m in messages]
    if path != "/v1/batch":
        kinds = [path.removeprefix("/v1/")]
    events = [i for i, kind in enumerate(kinds) if kind in EVENT_TYPES and i not in refused]
    if path != "/v1/batch" and body.get("errors"):
        events = []
    assert stored == len(events) - body["duplicates"], body
    await _still_serving(http)


def _messages(path: str, payload: Any) -> list[Any]:
    if path != "/v1/batch" or not isinstance(payload, dict):
        return [payload]
    batch = payload.get("batch")
    return batch if isinstance(batch, list) else []
