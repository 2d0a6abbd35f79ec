"""Exports on a real server: the six routes, filters against expectations computed from the
data the test sends, CSV and NDJSON read back, bad filters, API keys, page boundaries, and
the users export against the users list read through GraphQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import event

from services import export, ids
from tests.conftest import RunningServer
from tests.server.conftest import Tenants
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
# (identity, plan, hours ago of the last event, events sent); two users last seen 40 days ago.
PEOPLE = [
    ("u0", "pro", 1, 3),
    ("u1", "free", 2, 1),
    ("u2", "pro", 3, 2),
    ("u3", "free", 4, 4),
    ("u4", "pro", 5, 1),
    ("u5", "pro", 40 * 24, 2),
    ("u6", "free", 40 * 24 + 1, 1),
]
PRO_LAST_30 = {
    "seen": {"lastDays": 30},
    "properties": [{"property": "plan", "op": "EQUALS", "value": "pro"}],
}


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def _events_of(identity: str, hours_ago: int, count: int) -> list[dict[str, Any]]:
    """`count` events a minute apart, the last `hours_ago` hours ago: one web session."""
    return [
        {
            "event": "click" if n % 2 == 0 else "view",
            "identity": identity,
            "source": "WEB",
            "timestamp": _at(hours_ago + (count - 1 - n) / 60),
            "properties": {"n": n, "label": f'say "hi", {identity}\nthen go'},
        }
        for n in range(count)
    ]


async def _seed(api: Api) -> None:
    sent = [e for who, _, hours, count in PEOPLE for e in _events_of(who, hours, count)]
    result = await api.track_batch(sent)
    assert result["accepted"] == len(sent) and not result["errors"], result
    data = await api.gql(
        "mutation($u: [UserPropertiesInput!]!) "
        "{ addUserPropertiesBatch(users: $u) { errors { code } } }",
        u=[{"identity": who, "properties": {"plan": plan}} for who, plan, _, _ in PEOPLE],
    )
    assert not data["addUserPropertiesBatch"]["errors"]


def _url(kind: str, fmt: str, sent: Any = None) -> str:
    query = "" if sent is None else f"?filter={quote(json.dumps(sent))}"
    return f"/export/{kind}.{fmt}{query}"


async def _ndjson(http: httpx.AsyncClient, kind: str, sent: Any = None) -> list[dict[str, Any]]:
    response = await http.get(_url(kind, "ndjson", sent))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert f'filename="usertrail-{kind}.ndjson"' in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1] == {"rowCount": len(lines) - 1}
    return lines[:-1]


async def _csv(http: httpx.AsyncClient, kind: str, sent: Any = None) -> list[dict[str, str]]:
    response = await http.get(_url(kind, "csv", sent))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="usertrail-{kind}.csv"' in response.headers["content-disposition"]
    assert response.content.decode("utf-8").count("\r\n") >= 1  # RFC 4180 line ends
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pages of 2 rows (the server runs in this process): every export crosses pages."""
    monkeypatch.setattr(export, "PAGE", 2)
    return 2


async def test_users_export_in_both_formats(
    api: Api, http: httpx.AsyncClient, small_pages: int
) -> None:
    await _seed(api)
    expected = [p for p in PEOPLE if p[1] == "pro" and p[2] < 30 * 24]
    expected.sort(key=lambda p: p[2])  # newest activity first
    rows = await _ndjson(http, "users", PRO_LAST_30)
    assert len(rows) > small_pages
    assert [r["identity"] for r in rows] == [p[0] for p in expected]
    for row, (who, plan, hours, count) in zip(rows, expected, strict=True):
        assert list(row) == list(export.USER_COLUMNS)
        assert row["displayName"] == who and row["email"] is None
        assert row["sessionCount"] == 1 and row["eventCount"] == count
        assert row["properties"]["plan"] == plan
        assert datetime.fromisoformat(row["lastSeen"]) == NOW - timedelta(hours=hours)
        first = NOW - timedelta(hours=hours + (count - 1) / 60)
        assert abs(datetime.fromisoformat(row["firstSeen"]) - first) < timedelta(seconds=1)
    table = await _csv(http, "users", PRO_LAST_30)
    assert [r["identity"] for r in table] == [p[0] for p in expected]
    assert list(table[0]) == list(export.USER_COLUMNS)
    for line, row in zip(table, rows, strict=True):
        assert json.loads(line["properties"]) == row["properties"]
        assert line["userId"] == row["userId"] and line["email"] == ""
        assert int(line["eventCount"]) == row["eventCount"]
    # No filter: the default users list (seen in the last 7 days).
    everyone = await _ndjson(http, "users")
    assert [r["identity"] for r in everyone] == [p[0] for p in PEOPLE if p[2] < 7 * 24]
    nested = {
        "seen": {"lastDays": 60},
        "anyOf": [
            {"properties": [{"property": "plan", "op": "EQUALS", "value": "free"}]},
            {"events": [{"event": {"type": "click"}, "atLeast": 2}]},
        ],
    }
    # click is sent for even n: users of at least 3 events clicked twice.
    wanted = [p[0] for p in PEOPLE if p[1] == "free" or p[3] >= 3]
    assert [r["identity"] for r in await _ndjson(http, "users", nested)] == wanted


async def test_sessions_export(api: Api, http: httpx.AsyncClient, small_pages: int) -> None:
    await _seed(api)
    recent = sorted((p for p in PEOPLE if p[2] < 7 * 24), key=lambda p: p[2])
    rows = await _ndjson(http, "sessions")
    assert [r["identity"] for r in rows] == [p[0] for p in recent]
    for row, (_, _, hours, count) in zip(rows, recent, strict=True):
        assert list(row) == list(export.SESSION_COLUMNS)
        assert row["source"] == "WEB" and row["eventCount"] == count
        assert row["durationSeconds"] == (count - 1) * 60
        assert datetime.fromisoformat(row["endTime"]) == NOW - timedelta(hours=hours)
    pro = {
        "time": {"lastDays": 60},
        "userProperties": [{"property": "plan", "op": "EQUALS", "value": "pro"}],
    }
    table = await _csv(http, "sessions", pro)
    assert [r["identity"] for r in table] == [
        p[0] for p in sorted(PEOPLE, key=lambda p: p[2]) if p[1] == "pro"
    ]
    assert list(table[0]) == list(export.SESSION_COLUMNS)
    one = await _csv(http, "sessions", {"identity": "u3", "time": {"lastDays": 60}})
    assert [(r["identity"], r["eventCount"]) for r in one] == [("u3", "4")]
    by_id = await _ndjson(http, "sessions", {"userId": one[0]["userId"]})
    assert [r["id"] for r in by_id] == [one[0]["id"]]
    assert await _ndjson(http, "sessions", {"identity": "nobody"}) == []
    assert await _ndjson(http, "sessions", {"sources": ["IOS"]}) == []


async def test_events_export(api: Api, http: httpx.AsyncClient, small_pages: int) -> None:
    await _seed(api)
    sent = [e for who, _, hours, count in PEOPLE for e in _events_of(who, hours, count)]
    newest_first = sorted(sent, key=lambda e: e["timestamp"], reverse=True)
    rows = await _ndjson(http, "events")
    assert [(r["type"], r["time"]) for r in rows] == [
        (e["event"], e["timestamp"]) for e in newest_first
    ]
    assert all(list(r) == list(export.EVENT_COLUMNS) for r in rows)
    assert rows[0]["properties"] == sent[2]["properties"] and rows[0]["serverSide"] is False
    table = await _csv(http, "events", {"identity": "u3", "type": "click"})
    assert [(r["type"], json.loads(r["properties"])["n"]) for r in table] == [
        ("click", 2),
        ("click", 0),
    ]
    assert {r["serverSide"] for r in table} == {"false"}
    assert len({r["sessionId"] for r in table}) == 1
    window = {"time": {"from": _at(4.5), "to": _at(1.5)}}
    inside = [e for e in newest_first if _at(4.5) <= e["timestamp"] <= _at(1.5)]
    assert [r["time"] for r in await _ndjson(http, "events", window)] == [
        e["timestamp"] for e in inside
    ]
    user = (
        await _ndjson(
            http, "users", {"properties": [{"property": "identity", "op": "EQUALS", "value": "u0"}]}
        )
    )[0]
    mine = await _ndjson(http, "events", {"userId": user["userId"]})
    assert len(mine) == 3 and {r["userId"] for r in mine} == {user["userId"]}


@pytest.mark.parametrize(
    ("kind", "sent", "field"),
    [
        (
            "users",
            {"properties": [{"property": "plan", "op": "EQUALZ", "value": 1}]},
            "filter.properties[0].op",
        ),
        ("users", {"seen": {"lastDay": 3}}, "filter.seen.lastDay"),
        ("users", {"seen": {"lastDays": 0}}, "filter.seen.lastDays"),
        ("users", {"seen": {"from": "yesterday"}}, "filter.seen.from"),
        ("users", {"anyOf": [{"events": [{"event": {}}]}]}, "filter.anyOf[0].events[0].event"),
        ("users", {"segmentId": "nope"}, "filter.segmentId"),
        ("users", {"segmentId": ids.encode("Segment", 987654)}, "filter.segmentId"),
        ("users", [1], "filter"),
        ("sessions", {"sources": ["TV"]}, "filter.sources[0]"),
        ("sessions", {"userId": "x1"}, "filter.userId"),
        ("events", {"time": {"lastDays": "7"}}, "filter.time.lastDays"),
        ("events", {"userId": "1", "identity": "a"}, "filter.userId"),
    ],
)
async def test_a_bad_filter_is_400_naming_the_field(
    http: httpx.AsyncClient, kind: str, sent: Any, field: str
) -> None:
    for fmt in ("csv", "ndjson"):
        response = await http.get(_url(kind, fmt, sent))
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field, response.json()


async def test_unreadable_json_and_unknown_routes(http: httpx.AsyncClient) -> None:
    response = await http.get("/export/users.csv?filter=%7Bnope")
    assert response.status_code == 400 and response.json()["field"] == "filter"
    assert (await http.get("/export/people.csv")).status_code == 404
    assert (await http.get("/export/users.xlsx")).status_code == 404


async def test_keys_scopes_and_environments(tenants: Tenants) -> None:
    for key in (tenants.alpha.keys["read"], tenants.beta.keys["admin"]):
        await tenants.http.post(
            "/graphql",
            json={
                "query": "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }",
                "variables": {"e": [{"event": "x", "identity": f"{key[:6]}", "source": "WEB"}]},
            },
            headers={"authorization": f"Bearer {tenants.alpha.keys['ingest']}"},
        )
    await tenants.http.post(
        "/graphql",
        json={
            "query": 'mutation { track(input: {event: "y", identity: "beta-user"}) { accepted } }'
        },
        headers={"authorization": f"Bearer {tenants.beta.keys['ingest']}"},
    )
    for kind in ("users", "sessions", "events"):
        for fmt in ("csv", "ndjson"):
            url = f"/export/{kind}.{fmt}"
            assert (await tenants.http.get(url)).status_code == 401
            bad = {"authorization": "Bearer nope"}
            assert (await tenants.http.get(url, headers=bad)).status_code == 401
            revoked = {"authorization": f"Bearer {tenants.revoked}"}
            assert (await tenants.http.get(url, headers=revoked)).status_code == 401
            ingest = {"authorization": f"Bearer {tenants.alpha.keys['ingest']}"}
            refused = await tenants.http.get(url, headers=ingest)
            assert refused.status_code == 403 and refused.json()["requiredScope"] == "read"
    read = {"authorization": f"Bearer {tenants.alpha.keys['read']}"}
    alpha = await tenants.http.get("/export/users.ndjson", headers=read)
    assert alpha.status_code == 200
    names = [json.loads(line).get("identity") for line in alpha.text.splitlines()[:-1]]
    assert len(names) == 2 and "beta-user" not in names
    admin = {"authorization": f"Bearer {tenants.beta.keys['admin']}"}
    beta = await tenants.http.get("/export/events.ndjson", headers=admin)
    assert [json.loads(line)["type"] for line in beta.text.splitlines()[:-1]] == ["y"]


USERS_PAGE = """
query($filter: UserFilter, $after: String) {
  users(filter: $filter, first: 3, after: $after) {
    edges { node { userId identity sessionCount eventCount } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_the_users_export_is_the_users_list(
    api: Api, http: httpx.AsyncClient, small_pages: int
) -> None:
    await _seed(api)
    # More users, some sharing a last-seen time: ties ordered as the list orders them.
    extra = [
        {"event": "view", "identity": f"t{n}", "source": "WEB", "timestamp": _at(6 + n // 3)}
        for n in range(9)
    ]
    await api.track_batch(extra)
    for sent in (None, PRO_LAST_30, {"seen": {"lastDays": 60}}):
        listed: list[dict[str, Any]] = []
        after = None
        while True:
            page = (await api.gql(USERS_PAGE, filter=sent, after=after))["users"]
            listed += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        exported = await _ndjson(http, "users", sent)
        assert len(exported) > small_pages
        assert [
            {k: r[k] for k in ("userId", "identity", "sessionCount", "eventCount")}
            for r in exported
        ] == listed


async def test_a_client_that_leaves_stops_the_export(
    api: Api, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PAGE", 50)
    pad = {f"p{k}": "x" * 1000 for k in range(8)}  # ~8 KB a row: 16 MB, beyond socket buffers
    for batch in range(8):
        sent = [{"event": "big", "identity": f"big{batch}", "properties": pad}] * 250
        assert (await api.track_batch(sent))["accepted"] == 250
    statements: list[str] = []
    engine = server.db.engine.sync_engine
    count = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async with client.stream("GET", "/export/events.csv") as response:
                assert response.status_code == 200
                async for _ in response.aiter_bytes():
                    break
            # Leaving stops the reading: it runs no further statement, holds no connection.
            await asyncio.sleep(1)
            seen = len(statements)
            await asyncio.sleep(1)
            assert len(statements) == seen
            assert seen < 2000 // 50
            assert server.db.engine.pool.checkedout() == 0
            assert (await client.get("/healthz")).status_code == 200
            assert len(await _ndjson(client, "events")) == 2000
            assert len(statements) > 2000 // 50
    finally:
        event.remove(engine, "before_cursor_execute", count)
