"""Apollo's automatic persisted queries against a real server: Apollo Client 4's
`PersistedQueryLink` (tests/clients/apollo, a Node script), and httpx for the protocol's edges.
Also GraphQL over GET: a mutation sent with GET answers 405 with `Allow: POST`.

The Apollo packages pinned in tests/clients/apollo (package.json and its lock) are installed on
first run into tests/clients/apollo/node_modules, which git ignores. Without node or npm, or
when npm cannot install them, the Apollo test is skipped and says why; with the CI
environment variable set it fails instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from server.graphql_app import GraphQLApp
from server.persisted_queries import Counts
from services import environments, keys
from tests.conftest import RunningServer, start_server
from tests.node_packages import install

APOLLO = Path(__file__).parents[1] / "clients" / "apollo"
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}
EVENT_NAMES = "{ eventNames { type count } }"
TRACK = """mutation($input: TrackInput!) { track(input: $input) { accepted errors { code } } }"""
NESTED = """query($n: Int!) { users(first: $n) { edges { node { userId
  sessions(first: $n) { edges { node {
    events(first: $n) { edges { node { type } } } } } } } } } }"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str, *, version: Any = 1, digest: str | None = None) -> dict[str, Any]:
    """The `extensions` of a persisted query."""
    return {"persistedQuery": {"version": version, "sha256Hash": digest or sha256(text)}}


@dataclass
class Keyed:
    """A production server (dev=False): environment alpha with a key per scope, beta's admin key."""

    running: RunningServer
    http: httpx.AsyncClient
    keys: dict[str, str]
    beta: str

    @property
    def counts(self) -> Counts:
        """What the server's persisted-query cache did (read in the server's process)."""
        routes: list[Any] = self.running.app.routes  # type: ignore[attr-defined]
        endpoint = next(r.endpoint for r in routes if getattr(r, "path", None) == "/graphql")
        assert isinstance(endpoint, GraphQLApp)
        return endpoint.persisted_queries.counts

    async def post(
        self, body: dict[str, Any], *, key: str | None = "admin", accept: str | None = None
    ) -> httpx.Response:
        """POST a GraphQL request with alpha's key of scope `key` (or that very key)."""
        return await self.http.post("/graphql", json=body, headers=self._headers(key, accept))

    async def get(self, params: dict[str, Any], *, key: str | None = "admin") -> httpx.Response:
        """GET a GraphQL request; `variables` and `extensions` are sent as JSON."""
        sent = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        return await self.http.get("/graphql", params=sent, headers=self._headers(key, None))

    def _headers(self, key: str | None, accept: str | None) -> dict[str, str]:
        headers = {"accept": accept} if accept else {}
        if key is not None:
            headers["authorization"] = f"Bearer {self.keys.get(key, key)}"
        return headers


@asynccontextmanager
async def keyed_server(database_url: str, **settings: Any) -> AsyncIterator[Keyed]:
    running, server, task = await start_server(database_url, dev=False, **settings)
    try:
        await environments.ensure(running.db, name="alpha")
        await environments.ensure(running.db, name="beta")
        made = {
            scope: (await keys.create(running.db, environment="alpha", scope=scope))[1]
            for scope in keys.SCOPES
        }
        _, beta = await keys.create(running.db, environment="beta", scope="admin")
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
            yield Keyed(running, client, made, beta)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def keyed(database_url: str) -> AsyncIterator[Keyed]:
    async with keyed_server(database_url) as running:
        yield running


def graphql_requests(method: str) -> float:
    """Requests to /graphql answered 200 with `method`, as the server's metrics count them."""
    labels = {"route": "/graphql", "method": method, "status": "200"}
    return REGISTRY.get_sample_value("usertrail_http_requests_total", labels) or 0.0


# ---------------------------------------------------------------- Apollo Client 4


async def _apollo(node: str, url: str, key: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(APOLLO / "persisted.mjs"),
        url,
        cwd=APOLLO,
        env={**os.environ, "USERTRAIL_KEY": key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        pytest.fail(f"the Apollo script failed (exit {process.returncode}): {err.decode()}")
    steps: list[dict[str, Any]] = json.loads(lines[-1])
    return steps


def _shape(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["method"], "text" if r["withText"] else "hash") for r in requests if r["withHash"]]


async def test_apollo_persisted_query_link(keyed: Keyed) -> None:
    node = await asyncio.to_thread(install, APOLLO, "@apollo/client", what="the Apollo Client test")
    gets_before = graphql_requests("GET")
    steps = await _apollo(node, f"{keyed.running.url}/graphql", keyed.keys["admin"])
    by_name = {step["name"]: step for step in steps}
    assert all("error" not in step for step in steps), steps
    # Every operation went by hash first; an unknown hash fell back to its text (by POST),
    # a known one went by hash alone. Mutations are never sent with GET.
    assert _shape(by_name["track 1"]["requests"]) == [("POST", "hash"), ("POST", "text")]
    assert _shape(by_name["track 2"]["requests"]) == [("POST", "hash")]
    assert _shape(by_name["users 1"]["requests"]) == [("POST", "hash"), ("POST", "text")]
    assert _shape(by_name["users 2"]["requests"]) == [("POST", "hash")]
    assert _shape(by_name["eventNames by GET 1"]["requests"]) == [("GET", "hash"), ("POST", "text")]
    assert _shape(by_name["eventNames by GET 2"]["requests"]) == [("GET", "hash")]
    # The mutations ran (the second by hash alone) and the queries read them back.
    assert [by_name[f"track {n}"]["data"]["track"]["accepted"] for n in (1, 2)] == [1, 1]
    users = [e["node"] for e in by_name["users 2"]["data"]["users"]["edges"]]
    assert [(u["identity"], u["eventCount"]) for u in users] == [("apollo-apq@example.com", 2)]
    names = by_name["eventNames by GET 2"]["data"]["eventNames"]
    assert [(n["type"], n["count"]) for n in names] == [("Report Exported", 2)]
    # What the server saw: three texts, each sent once with its hash; three hits by hash alone,
    # one of them by GET (the server's request metrics count both hashed GETs as answered).
    assert keyed.counts == Counts(hits=3, misses=3, verified=3, kept=3, evicted=0)
    assert graphql_requests("GET") - gets_before == 2


# ------------------------------------------------------------ the protocol, with httpx


@pytest.mark.parametrize(
    "accept", [None, "application/graphql-response+json, application/json;q=0.9"]
)
async def test_an_unknown_hash_answers_not_found_with_200(keyed: Keyed, accept: str | None) -> None:
    answer = await keyed.post({"extensions": persisted(EVENT_NAMES)}, accept=accept)
    assert answer.status_code == 200 and answer.json() == NOT_FOUND
    by_get = await keyed.get({"extensions": persisted(EVENT_NAMES)})
    assert by_get.status_code == 200 and by_get.json() == NOT_FOUND
    assert keyed.counts.misses == 2


async def test_a_verified_text_then_runs_by_hash_over_post_and_get(keyed: Keyed) -> None:
    sent = await keyed.post({"query": EVENT_NAMES, "extensions": persisted(EVENT_NAMES)})
    assert sent.json() == {"data": {"eventNames": []}}
    by_post = await keyed.post({"extensions": persisted(EVENT_NAMES)})
    assert by_post.status_code == 200 and by_post.json() == {"data": {"eventNames": []}}
    with_variables = "query Names($time: TimeRange) { eventNames(time: $time) { type } }"
    await keyed.post({"query": with_variables, "extensions": persisted(with_variables)})
    by_get = await keyed.get(
        {
            "extensions": persisted(with_variables),
            "variables": {"time": None},
            "operationName": "Names",
        }
    )
    assert by_get.status_code == 200 and by_get.json() == {"data": {"eventNames": []}}
    # An uppercase hash names the same text.
    upper = await keyed.post({"extensions": persisted("", digest=sha256(EVENT_NAMES).upper())})
    assert upper.json() == {"data": {"eventNames": []}}
    assert keyed.counts == Counts(hits=3, misses=0, verified=2, kept=2, evicted=0)


async def test_a_wrong_hash_is_refused_and_nothing_is_kept(keyed: Keyed) -> None:
    lying = persisted(EVENT_NAMES, digest=sha256("{ segments { id } }"))
    refused = await keyed.post({"query": EVENT_NAMES, "extensions": lying})
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert "SHA-256 of the query text" in error["message"]
    for digest in (sha256("{ segments { id } }"), sha256(EVENT_NAMES)):
        alone = await keyed.post({"extensions": persisted("", digest=digest)})
        assert alone.json() == NOT_FOUND  # neither the lie nor the text was kept


@pytest.mark.parametrize(
    ("extension", "code"),
    [
        (
            {"version": 2, "sha256Hash": sha256(EVENT_NAMES)},
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
        ),
        ({"sha256Hash": sha256(EVENT_NAMES)}, "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"),
        (
            {"version": True, "sha256Hash": sha256(EVENT_NAMES)},
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
        ),
        ({"version": 1, "sha256Hash": "abc"}, "PERSISTED_QUERY_INVALID"),
        ({"version": 1, "sha256Hash": 12}, "PERSISTED_QUERY_INVALID"),
        ("a hash", "PERSISTED_QUERY_INVALID"),
    ],
)
async def test_an_unsupported_version_or_a_malformed_extension_is_refused(
    keyed: Keyed, extension: Any, code: str
) -> None:
    for body in (
        {"extensions": {"persistedQuery": extension}},
        {"query": EVENT_NAMES, "extensions": {"persistedQuery": extension}},
    ):
        refused = await keyed.post(body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize(
    "text",
    [
        "{ eventNames { type ",  # does not parse
        "{ eventNames { name } }",  # does not validate
        "{ a: eventNames { type } " + "b: eventNames { type } " * 60 + "}",  # over a limit
    ],
    ids=["syntax", "validation", "limit"],
)
async def test_a_document_that_does_not_run_is_never_kept(keyed: Keyed, text: str) -> None:
    sent = await keyed.post({"query": text, "extensions": persisted(text)})
    assert sent.json()["errors"] and sent.json().get("data") is None
    alone = await keyed.post({"extensions": persisted(text)})
    assert alone.status_code == 200 and alone.json() == NOT_FOUND
    assert keyed.counts.kept == 0


async def test_a_persisted_query_is_checked_by_the_limits_with_its_variables(keyed: Keyed) -> None:
    within = await keyed.post(
        {"query": NESTED, "variables": {"n": 10}, "extensions": persisted(NESTED)}
    )
    assert within.json() == {"data": {"users": {"edges": []}}}
    over = await keyed.post({"variables": {"n": 500}, "extensions": persisted(NESTED)})
    assert over.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert keyed.counts.hits == 1


async def test_a_persisted_query_needs_a_key_and_stays_in_its_environment(keyed: Keyed) -> None:
    await keyed.post({"query": EVENT_NAMES, "extensions": persisted(EVENT_NAMES)})
    anonymous = await keyed.post({"extensions": persisted(EVENT_NAMES)}, key=None)
    assert anonymous.status_code == 401
    assert keyed.counts.hits == 0  # refused before the cache was asked
    # Another environment's key does not learn that alpha ran this query.
    elsewhere = await keyed.post({"extensions": persisted(EVENT_NAMES)}, key=keyed.beta)
    assert elsewhere.json() == NOT_FOUND
    # A mutation kept for the admin key is still refused to a read key by hash alone.
    variables = {"input": {"event": "Signed Up", "identity": "apq@example.com"}}
    stored = await keyed.post(
        {"query": TRACK, "variables": variables, "extensions": persisted(TRACK)}
    )
    assert stored.json()["data"]["track"]["accepted"] == 1
    forbidden = await keyed.post(
        {"variables": variables, "extensions": persisted(TRACK)}, key="read"
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_cache_evicts_the_least_recently_used_within_its_bounds(
    database_url: str,
) -> None:
    texts = [f"query Q{i} {{ eventNames {{ type }} }}" for i in range(4)]
    async with keyed_server(database_url, persisted_query_entries=3) as keyed:
        for text in texts[:3]:
            await keyed.post({"query": text, "extensions": persisted(text)})
        await keyed.post({"extensions": persisted(texts[0])})  # Q0 used: Q1 is now the oldest
        await keyed.post({"query": texts[3], "extensions": persisted(texts[3])})
        found = [
            (await keyed.post({"extensions": persisted(text)})).json() != NOT_FOUND
            for text in texts
        ]
        assert found == [True, False, True, True], keyed.counts
        assert keyed.counts.evicted == 1
    # Bounded in bytes too: 8 KiB holds eight texts of ~930 bytes; one over 1 KiB (an eighth)
    # is run, not kept.
    padded = [f"# {'.' * 900}\nquery P{i} {{ eventNames {{ type }} }}" for i in range(9)]
    async with keyed_server(database_url, persisted_query_bytes=8 * 1024) as keyed:
        for text in padded:
            await keyed.post({"query": text, "extensions": persisted(text)})
        found = [
            (await keyed.post({"extensions": persisted(text)})).json() != NOT_FOUND
            for text in padded
        ]
        assert found == [False] + [True] * 8
        large = f"# {'.' * 1100}\n{EVENT_NAMES}"
        ran = await keyed.post({"query": large, "extensions": persisted(large)})
        assert ran.json() == {"data": {"eventNames": []}}
        assert (await keyed.post({"extensions": persisted(large)})).json() == NOT_FOUND


# --------------------------------------------------------------------- GraphQL over GET


async def test_a_mutation_over_get_answers_405_with_allow_post(keyed: Keyed) -> None:
    variables = {"input": {"event": "Signed Up", "identity": "get@example.com"}}
    refused = await keyed.get({"query": TRACK, "variables": variables})
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert "mutations cannot be sent with GET" in error["message"] and "POST" in error["message"]
    # By hash alone too, once the text is known: GET runs queries only.
    await keyed.post({"query": TRACK, "variables": variables, "extensions": persisted(TRACK)})
    by_hash = await keyed.get({"variables": variables, "extensions": persisted(TRACK)})
    assert by_hash.status_code == 405 and by_hash.headers["allow"] == "POST"
    names = await keyed.get({"query": "{ eventNames { type count } }"})
    assert names.status_code == 200
    assert names.json() == {"data": {"eventNames": [{"type": "Signed Up", "count": 1}]}}
