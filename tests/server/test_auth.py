"""API keys on a real server outside dev mode: every route and mutation with no key, a revoked
key, another environment's key and too small a scope; data never crosses environments.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.schema import schema
from graph.scopes import FIELD_SCOPES, needed_scope
from server import admin_cli, segment_api
from services import ids, keys
from tests.conftest import start_server
from tests.server.conftest import Tenant, Tenants

MISSING_DEFINITION = ids.encode("EventDefinition", 987654)
MISSING_SEGMENT = ids.encode("Segment", 987654)
# One valid operation per root field: (operation type, field) -> (document, variables).
OPERATIONS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("query", "node"): (
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": ids.encode("User", 1)},
    ),
    ("query", "user"): ('{ user(userId: "1") { userId } }', {}),
    ("query", "users"): ("{ users { totalCount } }", {}),
    ("query", "sessions"): ("{ sessions { totalCount } }", {}),
    ("query", "eventNames"): ("{ eventNames { type } }", {}),
    ("query", "eventDefinitions"): ("{ eventDefinitions { id } }", {}),
    ("query", "segments"): ("{ segments { id } }", {}),
    ("mutation", "track"): (
        'mutation { track(input: {event: "Login", userId: "7"}) { accepted errors { code } } }',
        {},
    ),
    ("mutation", "trackBatch"): (
        'mutation { trackBatch(events: [{event: "Login", userId: "7"}]) { accepted } }',
        {},
    ),
    ("mutation", "identify"): (
        'mutation { identify(input: {userId: "7", identity: "seven"}) { errors { code } } }',
        {},
    ),
    ("mutation", "addUserProperties"): (
        'mutation { addUserProperties(input: {identity: "eight", properties: {plan: "pro"}}) '
        "{ errors { code } } }",
        {},
    ),
    ("mutation", "addUserPropertiesBatch"): (
        'mutation { addUserPropertiesBatch(users: [{identity: "nine", properties: {a: 1}}]) '
        "{ accepted } }",
        {},
    ),
    ("mutation", "deleteUser"): (
        'mutation { deleteUser(userId: "424242") { deletedId errors { code } } }',
        {},
    ),
    ("mutation", "mergeUsers"): (
        'mutation { mergeUsers(into: "424242", from: "424243") { merged errors { code } } }',
        {},
    ),
    ("mutation", "createStaticSegment"): (
        'mutation { createStaticSegment(input: {name: "Listed", userIds: []}) '
        "{ errors { code } } }",
        {},
    ),
    ("mutation", "addSegmentMembers"): (
        'mutation($id: ID!) { addSegmentMembers(id: $id, userIds: ["1"]) { errors { code } } }',
        {"id": MISSING_SEGMENT},
    ),
    ("mutation", "removeSegmentMembers"): (
        'mutation($id: ID!) { removeSegmentMembers(id: $id, userIds: ["1"]) { errors { code } } }',
        {"id": MISSING_SEGMENT},
    ),
    ("mutation", "defineEvent"): (
        'mutation { defineEvent(input: {name: "Login", criteria: [{type: "Login"}]}) '
        "{ errors { code } } }",
        {},
    ),
    ("mutation", "updateEventDefinition"): (
        'mutation($id: ID!) { updateEventDefinition(id: $id, input: {name: "X", criteria: '
        '[{type: "x"}]}) { errors { code } } }',
        {"id": MISSING_DEFINITION},
    ),
    ("mutation", "deleteEventDefinition"): (
        "mutation($id: ID!) { deleteEventDefinition(id: $id) { errors { code } } }",
        {"id": MISSING_DEFINITION},
    ),
    ("mutation", "createSegment"): (
        'mutation { createSegment(input: {name: "All", filter: {}}) { errors { code } } }',
        {},
    ),
    ("mutation", "updateSegment"): (
        'mutation($id: ID!) { updateSegment(id: $id, input: {name: "X", filter: {}}) '
        "{ errors { code } } }",
        {"id": MISSING_SEGMENT},
    ),
    ("mutation", "deleteSegment"): (
        "mutation($id: ID!) { deleteSegment(id: $id) { errors { code } } }",
        {"id": MISSING_SEGMENT},
    ),
}
SEGMENT_PATHS = [f"/v1/{path}" for paths in segment_api.PATHS.values() for path in paths]
HEAP_PATHS = ["/api/track", "/api/add_user_properties", "/api/v1/identify"]


def _root_fields() -> set[tuple[str, str]]:
    core = schema._schema
    return {("query", name) for name in core.query_type.fields} | {
        ("mutation", name) for name in core.mutation_type.fields
    }


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    return response.json().get("errors") or []


def _codes(response: httpx.Response) -> list[str]:
    return [(e.get("extensions") or {}).get("code") for e in _errors(response)]


# ---------------------------------------------------------------- the scope of each field


def test_every_root_field_has_a_scope_and_a_test_operation() -> None:
    fields = _root_fields()
    assert set(OPERATIONS) == fields, "add the new root field to OPERATIONS (and FIELD_SCOPES)"
    unlisted = {field for field in fields if field not in FIELD_SCOPES}
    assert not unlisted, f"decide which scope these need in graph/scopes.py: {unlisted}"
    assert all(FIELD_SCOPES[("query", name)] == "read" for kind, name in fields if kind == "query")


def test_unknown_root_fields_need_admin_introspection_read_and_typename_any_key() -> None:
    assert needed_scope("mutation", "dropEverything") == "admin"
    assert needed_scope("query", "secretReport") == "admin"
    assert needed_scope("query", "__schema") == "read"
    assert needed_scope("query", "__type") == "read"
    assert needed_scope("mutation", "__typename") is None


# ------------------------------------------------------------------ refused without a key


async def test_every_operation_needs_an_active_key(tenants: Tenants) -> None:
    bad_headers = {
        "no key": None,
        "revoked key": tenants.revoked,
        "unknown key": "utk_" + "A" * 43,
        "not one of ours": "abc",
    }
    for (_, field), (query, variables) in OPERATIONS.items():
        for label, key in bad_headers.items():
            response = await tenants.graphql(key, query, **variables)
            assert response.status_code == 401, (field, label, response.text)
            assert _codes(response) == ["UNAUTHENTICATED"], (field, label)
            assert response.headers["www-authenticate"].startswith("Bearer")
        basic = await tenants.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": "Basic " + base64.b64encode(b"key:").decode()},
        )
        assert basic.status_code == 401 and "Bearer" in _errors(basic)[0]["message"]
    # The refused mutations changed nothing.
    read = tenants.alpha.keys["read"]
    data = await tenants.data(read, "{ users(filter: {seen: {lastDays: 3650}}) { totalCount } }")
    assert data["users"]["totalCount"] == 0


async def test_get_queries_need_a_key(tenants: Tenants) -> None:
    query = {"query": "{ users { totalCount } }"}
    refused = await tenants.http.get("/graphql", params=query)
    assert refused.status_code == 401 and _codes(refused) == ["UNAUTHENTICATED"]
    key = {"authorization": f"Bearer {tenants.alpha.keys['read']}"}
    answered = await tenants.http.get("/graphql", params=query, headers=key)
    assert answered.json() == {"data": {"users": {"totalCount": 0}}}
    mutation = await tenants.http.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers=key
    )
    assert mutation.status_code in (400, 405)


# ------------------------------------------------------------------------ scope per field


async def test_each_scope_reaches_exactly_its_fields(tenants: Tenants) -> None:
    for (kind, field), (query, variables) in OPERATIONS.items():
        needed = needed_scope(kind, field)
        for scope in keys.SCOPES:
            response = await tenants.graphql(tenants.beta.keys[scope], query, **variables)
            allowed = keys.Principal(tenants.beta.environment_id, scope).may(needed or "")
            if allowed:
                assert response.status_code == 200, (field, scope, response.text)
                assert "FORBIDDEN" not in _codes(response), (field, scope)
                assert response.json()["data"][field] is not None or kind == "query"
            else:
                assert response.status_code == 403, (field, scope, response.text)
                [error] = _errors(response)
                assert error["extensions"] == {
                    "code": "FORBIDDEN",
                    "requiredScope": needed,
                    "field": field,
                }
                assert f"scope {needed}" in error["message"]
                assert f"this key has scope {scope}" in error["message"]


async def test_an_operation_is_refused_whole_when_one_root_field_is_beyond_the_scope(
    tenants: Tenants,
) -> None:
    ingest = tenants.alpha.keys["ingest"]
    mixed = (
        'mutation { track(input: {event: "Login", userId: "5"}) { accepted } '
        'deleteUser(userId: "5") { deletedId } }'
    )
    refused = await tenants.graphql(ingest, mixed)
    assert refused.status_code == 403 and _errors(refused)[0]["extensions"]["field"] == "deleteUser"
    through_fragment = (
        'mutation { ...Erase } fragment Erase on Mutation { gone: deleteUser(userId: "5") '
        "{ deletedId } }"
    )
    assert (await tenants.graphql(ingest, through_fragment)).status_code == 403
    read = tenants.alpha.keys["read"]
    assert (await tenants.data(read, '{ user(userId: "5") { userId } }'))["user"] is None


async def test_the_chosen_operation_is_checked_and_typename_needs_no_scope(
    tenants: Tenants,
) -> None:
    read = tenants.alpha.keys["read"]
    document = (
        "query Count { users { totalCount } } "
        'mutation Erase { deleteUser(userId: "5") { deletedId } }'
    )
    count = await tenants.http.post(
        "/graphql",
        json={"query": document, "operationName": "Count"},
        headers={"authorization": f"Bearer {read}"},
    )
    assert count.status_code == 200 and count.json()["data"]["users"]["totalCount"] == 0
    erase = await tenants.http.post(
        "/graphql",
        json={"query": document, "operationName": "Erase"},
        headers={"authorization": f"Bearer {read}"},
    )
    assert erase.status_code == 403
    ingest = tenants.alpha.keys["ingest"]
    assert await tenants.data(ingest, "mutation { __typename }") == {"__typename": "Mutation"}


# -------------------------------------------------------------------- Segment and Heap


def _segment_message(path: str, n: int) -> dict[str, Any]:
    kind = {"b": "batch", "t": "track", "i": "identify", "p": "page", "s": "screen"}
    kind |= {"a": "alias", "g": "group"}
    name = path.removeprefix("/v1/")
    name = kind.get(name, name)
    message: dict[str, Any] = {"userId": f"seg-{n}", "timestamp": "2026-03-02T10:00:00Z"}
    if name == "batch":
        return {"batch": [{**message, "type": "track", "event": "Signed Up"}]}
    if name == "track":
        message["event"] = "Signed Up"
    if name == "alias":
        message["previousId"] = f"anon-{n}"
    if name == "group":
        message["groupId"] = "g1"
    return message


async def test_segment_routes_take_an_ingest_or_admin_key_as_write_key(tenants: Tenants) -> None:
    for n, path in enumerate(SEGMENT_PATHS):
        body = _segment_message(path, n)
        missing = await tenants.http.post(path, json=body)
        assert (missing.status_code, missing.json()["code"]) == (401, "MISSING_WRITE_KEY"), path
        for key in (tenants.revoked, "utk_unknown", "wk"):
            unknown = await tenants.http.post(path, json=body, auth=(key, ""))
            assert (unknown.status_code, unknown.json()["code"]) == (401, "UNKNOWN_WRITE_KEY")
        read = await tenants.http.post(path, json=body, auth=(tenants.alpha.keys["read"], ""))
        assert read.status_code == 403, (path, read.text)
        assert (read.json()["code"], read.json()["requiredScope"]) == ("FORBIDDEN", "ingest")
        in_body = await tenants.http.post(
            path, json={**body, "writeKey": tenants.alpha.keys["read"]}
        )
        assert in_body.status_code == 403
        for scope in ("ingest", "admin"):
            sent = await tenants.http.post(path, json=body, auth=(tenants.beta.keys[scope], ""))
            assert sent.status_code == 200, (path, scope, sent.text)
    # The events went to beta, the environment of the keys; alpha has nothing.
    beta = await tenants.data(
        tenants.beta.keys["read"], '{ user(identity: "seg-0") { eventCount } }'
    )
    assert beta["user"]["eventCount"] == 2  # once with the ingest key, once with the admin key
    alpha = await tenants.data(
        tenants.alpha.keys["read"],
        "{ users(filter: {seen: {lastDays: 3650}}) { totalCount } eventNames { type } }",
    )
    assert alpha == {"users": {"totalCount": 0}, "eventNames": []}


async def test_heap_routes_act_in_the_environment_of_the_app_id(tenants: Tenants) -> None:
    bodies = {
        "/api/track": {"identity": "heap-user", "event": "Paid"},
        "/api/add_user_properties": {"identity": "heap-user", "properties": {"plan": "pro"}},
        "/api/v1/identify": {"user_id": "31337", "identity": "heap-other"},
    }
    await tenants.http.post(
        "/api/track", json={"app_id": tenants.alpha.app_id, "user_id": 31337, "event": "Seen"}
    )
    for path in HEAP_PATHS:
        unknown = await tenants.http.post(path, json={**bodies[path], "app_id": "1"})
        assert (unknown.status_code, unknown.json()["code"]) == (400, "UNKNOWN_APP_ID")
        # A bearer key does not move the data: the app_id names the environment, as with Heap.
        sent = await tenants.http.post(
            path,
            json={**bodies[path], "app_id": tenants.alpha.app_id},
            headers={"authorization": f"Bearer {tenants.beta.keys['admin']}"},
        )
        assert sent.status_code == 200, (path, sent.text)
    query = '{ user(identity: "heap-user") { eventCount property(name: "plan") } }'
    alpha = await tenants.data(tenants.alpha.keys["read"], query)
    assert alpha["user"] == {"eventCount": 1, "property": "pro"}
    assert (await tenants.data(tenants.beta.keys["read"], query))["user"] is None


async def test_health_needs_no_key(tenants: Tenants) -> None:
    health = await tenants.http.get("/healthz")
    assert health.json() == {"status": "ok"}


# ------------------------------------------------------------------ across environments

SEED = """
mutation($events: [TrackInput!]!) {
  trackBatch(events: $events) { accepted errors { code message } }
  identify(input: {userId: "1001", identity: "alice"}) { errors { code } }
  addUserProperties(input: {identity: "alice", properties: {plan: "pro", email: "a@x.io"}}) {
    errors { code }
  }
}"""
CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/131.0 Safari"
EVENTS = [
    {
        "event": "pageview",
        "userId": "1001",
        "source": "WEB",
        "timestamp": "2026-03-02T10:00:00Z",
        "context": {"url": "https://shop.example.com/pricing", "userAgent": CHROME},
    },
    {"event": "Invoice Paid", "userId": "1001", "timestamp": "2026-03-02T10:05:00Z"},
]
IDS = """{ user(identity: "alice") { id userId
  sessions { edges { node { id events { edges { node { id } } } } } } } segments { id }
  eventDefinitions { id } }"""
EVERYTHING = {"seen": {"from": "2000-01-01T00:00:00Z"}}


async def _seed(tenants: Tenants, tenant: Tenant) -> dict[str, str]:
    """Alice's user, session, event, a segment and a definition in `tenant`; their ids."""
    seeded = await tenants.data(tenant.keys["ingest"], SEED, events=EVENTS)
    assert seeded["trackBatch"] == {"accepted": 2, "errors": []}
    admin = tenant.keys["admin"]
    segment = await tenants.data(
        admin,
        'mutation($f: UserFilter!) { createSegment(input: {name: "Pros", filter: $f}) '
        "{ segment { id } errors { code } } }",
        f={**EVERYTHING, "properties": [{"property": "plan", "op": "EQUALS", "value": "pro"}]},
    )
    definition = await tenants.data(
        admin,
        'mutation { defineEvent(input: {name: "Paid", criteria: [{type: "Invoice Paid"}]}) '
        "{ definition { id } errors { code } } }",
    )
    assert segment["createSegment"]["errors"] == definition["defineEvent"]["errors"] == []
    found = await tenants.data(tenant.keys["read"], IDS)
    session = found["user"]["sessions"]["edges"][0]["node"]
    return {
        "user": found["user"]["id"],
        "session": session["id"],
        "event": session["events"]["edges"][0]["node"]["id"],
        "segment": found["segments"][0]["id"],
        "definition": found["eventDefinitions"][0]["id"],
    }


async def test_global_ids_of_another_environment_resolve_to_nothing(tenants: Tenants) -> None:
    alpha = await _seed(tenants, tenants.alpha)
    read_alpha, read_beta = tenants.alpha.keys["read"], tenants.beta.keys["read"]
    node = "query($id: ID!) { node(id: $id) { id } }"
    for kind, global_id in alpha.items():
        assert (await tenants.data(read_alpha, node, id=global_id))["node"] == {"id": global_id}
        assert (await tenants.data(read_beta, node, id=global_id))["node"] is None, kind


async def test_filters_and_counts_never_see_another_environment(tenants: Tenants) -> None:
    await _seed(tenants, tenants.alpha)
    read_alpha, read_beta = tenants.alpha.keys["read"], tenants.beta.keys["read"]
    by_identity = """query($f: UserFilter, $s: SessionFilter) {
      users(filter: $f) { totalCount edges { node { userId } } }
      sessions(filter: $s) { totalCount }
      alice: user(identity: "alice") { userId }
      byId: user(userId: "1001") { userId }
      eventNames(time: {lastDays: 3650}) { type count }
      segments { id }
      eventDefinitions { id }
    }"""
    variables = {
        "f": {
            **EVERYTHING,
            "properties": [{"property": "identity", "op": "EQUALS", "value": "alice"}],
        },
        "s": {"identity": "alice", "time": {"from": "2000-01-01T00:00:00Z"}},
    }
    seen_by_alpha = await tenants.data(read_alpha, by_identity, **variables)
    assert (
        seen_by_alpha["users"]["totalCount"] == 1 and seen_by_alpha["sessions"]["totalCount"] == 1
    )
    assert seen_by_alpha["alice"] == seen_by_alpha["byId"] == {"userId": "1001"}
    assert {e["type"] for e in seen_by_alpha["eventNames"]} == {"pageview", "Invoice Paid"}
    seen_by_beta = await tenants.data(read_beta, by_identity, **variables)
    assert seen_by_beta == {
        "users": {"totalCount": 0, "edges": []},
        "sessions": {"totalCount": 0},
        "alice": None,
        "byId": None,
        "eventNames": [],
        "segments": [],
        "eventDefinitions": [],
    }
    everyone = """query($f: UserFilter) { users(filter: $f) { totalCount }
      sessions(filter: {time: {from: "2000-01-01T00:00:00Z"}, includeServerOnly: true}) {
        totalCount } }"""
    assert await tenants.data(read_beta, everyone, f=EVERYTHING) == {
        "users": {"totalCount": 0},
        "sessions": {"totalCount": 0},
    }


async def test_references_to_another_environment_fail_as_if_they_did_not_exist(
    tenants: Tenants,
) -> None:
    alpha = await _seed(tenants, tenants.alpha)
    beta_read, beta_admin = tenants.beta.keys["read"], tenants.beta.keys["admin"]
    members = "query($f: UserFilter) { users(filter: $f) { totalCount } }"
    highlight = """query($m: EventMatch!) { users(filter: {seen: {lastDays: 3650},
      events: [{event: $m}]}) { totalCount } }"""

    def same_answer(foreign: httpx.Response, missing: httpx.Response, foreign_id: str) -> None:
        """Both answers alike once the ids they echo are blanked: nothing leaks existence."""
        number = ids.decode(foreign_id)[1][0]  # type: ignore[index]

        def blanked(response: httpx.Response, echoed: int) -> Any:
            body = response.json()
            for error in body.get("errors") or []:
                error["message"] = error["message"].replace(f"id {echoed}", "id N")
            return response.status_code, body

        assert blanked(foreign, number) == blanked(missing, 987654)

    for_segment = await tenants.graphql(beta_read, members, f={"segmentId": alpha["segment"]})
    no_segment = await tenants.graphql(beta_read, members, f={"segmentId": MISSING_SEGMENT})
    same_answer(for_segment, no_segment, alpha["segment"])
    assert _codes(for_segment) == ["UNKNOWN_SEGMENT"]
    in_alpha = await tenants.data(
        tenants.alpha.keys["read"], members, f={**EVERYTHING, "segmentId": alpha["segment"]}
    )
    assert in_alpha["users"]["totalCount"] == 1
    for_definition = await tenants.graphql(
        beta_read, highlight, m={"definitionId": alpha["definition"]}
    )
    no_definition = await tenants.graphql(
        beta_read, highlight, m={"definitionId": MISSING_DEFINITION}
    )
    same_answer(for_definition, no_definition, alpha["definition"])
    assert for_definition.json() == {"data": {"users": {"totalCount": 0}}}
    in_alpha = await tenants.data(
        tenants.alpha.keys["read"], highlight, m={"definitionId": alpha["definition"]}
    )
    assert in_alpha["users"]["totalCount"] == 1

    # Mutations of beta's admin on alpha's things are refused like mutations on nothing.
    for field, global_id, missing in (
        ("updateSegment", alpha["segment"], MISSING_SEGMENT),
        ("deleteSegment", alpha["segment"], MISSING_SEGMENT),
        ("updateEventDefinition", alpha["definition"], MISSING_DEFINITION),
        ("deleteEventDefinition", alpha["definition"], MISSING_DEFINITION),
    ):
        query, _ = OPERATIONS[("mutation", field)]
        foreign = (await tenants.data(beta_admin, query, id=global_id))[field]
        absent = (await tenants.data(beta_admin, query, id=missing))[field]
        assert foreign["errors"] and [e["code"] for e in foreign["errors"]] == [
            e["code"] for e in absent["errors"]
        ], field
    erase = 'mutation { deleteUser(identity: "alice") { deletedId errors { code } } }'
    refused = (await tenants.data(beta_admin, erase))["deleteUser"]
    assert refused["deletedId"] is None and refused["errors"][0]["code"] == "UNKNOWN_USER"
    from_event = (
        'mutation($e: ID) { defineEvent(input: {name: "Copy", criteria: [], fromEventId: $e}) '
        "{ definition { id } errors { code } } }"
    )
    copied = (await tenants.data(beta_admin, from_event, e=alpha["event"]))["defineEvent"]
    unknown_event = ids.encode("Event", 1001, 987654)
    nothing = (await tenants.data(beta_admin, from_event, e=unknown_event))["defineEvent"]
    assert copied["definition"] is None and copied["errors"] == nothing["errors"]

    # Alpha still has everything.
    check = """query($s: ID!, $d: ID!) { user(identity: "alice") { eventCount }
      s: node(id: $s) { id } d: node(id: $d) { id } }"""
    kept = await tenants.data(
        tenants.alpha.keys["read"], check, s=alpha["segment"], d=alpha["definition"]
    )
    assert kept["user"] == {"eventCount": 2} and kept["s"] and kept["d"]


async def test_the_same_ids_in_two_environments_are_two_people(tenants: Tenants) -> None:
    await _seed(tenants, tenants.alpha)
    beta_ingest, beta_read = tenants.beta.keys["ingest"], tenants.beta.keys["read"]
    seeded = await tenants.data(beta_ingest, SEED, events=EVENTS[1:])
    assert seeded["trackBatch"]["accepted"] == 1
    query = '{ user(identity: "alice") { userId eventCount property(name: "plan") } }'
    assert (await tenants.data(beta_read, query))["user"] == {
        "userId": "1001",
        "eventCount": 1,
        "property": "pro",
    }
    assert (await tenants.data(tenants.alpha.keys["read"], query))["user"]["eventCount"] == 2
    erased = await tenants.data(
        tenants.beta.keys["admin"],
        'mutation { deleteUser(identity: "alice") { deletedId errors { code } } }',
    )
    assert erased["deleteUser"]["errors"] == []
    assert (await tenants.data(tenants.alpha.keys["read"], query))["user"]["eventCount"] == 2


# ---------------------------------------------------------------------------- the CLI


async def test_cli_creates_environments_and_keys_that_the_server_accepts(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    errors: list[str] = []

    def cli(*argv: str) -> tuple[int, list[str]]:
        code = admin_cli.main([*argv, "--database-url", database_url])
        captured = capsys.readouterr()
        errors.append(captured.err)
        return code, captured.out.splitlines()

    code, out = await asyncio.to_thread(cli, "env", "create", "production")
    app_id = out[-1]
    assert code == 0 and app_id.isdigit() and len(app_id) == 10
    code, _ = await asyncio.to_thread(cli, "env", "create", "production")
    assert code == 1 and "exists already" in errors[-1]
    made = {}
    for scope in keys.SCOPES:
        code, out = await asyncio.to_thread(
            cli, "key", "create", "--env", "production", "--scope", scope, "--label", f"{scope} use"
        )
        assert code == 0 and out[-1].startswith(keys.PREFIX) and len(out[-1]) >= 36
        made[scope] = out[-1]
    code, _ = await asyncio.to_thread(cli, "key", "create", "--env", "nowhere", "--scope", "read")
    assert code == 1 and "no environment named 'nowhere'" in errors[-1]
    code, listing = await asyncio.to_thread(cli, "key", "list")
    assert code == 0 and len(listing) == 4
    assert not any(key in "\n".join(listing) for key in made.values())  # secrets never listed
    assert "admin use" in listing[3] and listing[3].split()[-1] == "-"

    running, server, task = await start_server(database_url, dev=False)
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            track = await client.post(
                "/api/track", json={"app_id": app_id, "identity": "cli", "event": "Signed Up"}
            )
            assert track.status_code == 200
            query = {"query": '{ user(identity: "cli") { eventCount } }'}
            bearer = {"authorization": f"Bearer {made['read']}"}
            read = await client.post("/graphql", json=query, headers=bearer)
            assert read.json() == {"data": {"user": {"eventCount": 1}}}
            code, out = await asyncio.to_thread(cli, "key", "revoke", "2")  # the read key
            assert code == 0
            refused = await client.post("/graphql", json=query, headers=bearer)
            assert refused.status_code == 401
            code, _ = await asyncio.to_thread(cli, "key", "revoke", "2")
            assert code == 1 and "no active key" in errors[-1]
    finally:
        server.should_exit = True
        await task


def test_cli_as_a_module_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    def run(*argv: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "server.admin_cli", *argv],
            capture_output=True,
            text=True,
            check=True,
            env={"USERTRAIL_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
            cwd=Path(__file__).parents[2],
            timeout=120,
        )
        return done.stdout.splitlines()

    app_id = run("env", "create", "staging")[-1]
    key = run("key", "create", "--env", "staging", "--scope", "ingest")[-1]
    assert app_id.isdigit() and key.startswith(keys.PREFIX) and " " not in key
    assert "staging" in "\n".join(run("env", "list"))
