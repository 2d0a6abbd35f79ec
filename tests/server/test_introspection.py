"""Production defaults for introspection and GraphiQL, on real servers with API keys.

Outside dev mode both are off unless switched on (USERTRAIL_INTROSPECTION=1, `serve
--introspection`); switched on, only read and admin keys may introspect (an ingest key is
refused as FORBIDDEN, like any other scope refusal) and the GraphiQL page needs no key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.cli import _parser
from server.settings import Settings
from services import keys
from tests.conftest import start_server
from tests.server.conftest import Tenants, _tenant

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "User") { fields { name } } }'
THROUGH_FRAGMENT = "query { ...Map } fragment Map on Query { __schema { types { name } } }"
HTML = {"accept": "text/html"}


@pytest.fixture
async def open_tenants(database_url: str) -> AsyncIterator[Tenants]:
    """A production server with introspection switched on, environment alpha and its keys."""
    running, server, task = await start_server(database_url, dev=False, introspection=True)
    alpha = await _tenant(running.db, "alpha")
    async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
        yield Tenants(running.url, running.db, alpha, alpha, "", client)
    server.should_exit = True
    await task


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    return list(response.json().get("errors") or [])


def test_introspection_is_on_in_dev_mode_and_off_outside_unless_switched_on() -> None:
    assert Settings(dev=True).introspection_on is True
    assert Settings(dev=False).introspection_on is False
    assert Settings(dev=False, introspection=True).introspection_on is True
    assert Settings(dev=True, introspection=False).introspection_on is False
    environ = {"USERTRAIL_DEV": "0", "USERTRAIL_INTROSPECTION": "1"}
    assert Settings.from_env(environ).introspection_on is True
    assert _parser().parse_args(["serve"]).introspection is None
    assert _parser().parse_args(["serve", "--introspection"]).introspection is True
    assert _parser().parse_args(["serve", "--no-introspection"]).introspection is False


async def test_outside_dev_mode_introspection_and_graphiql_are_off_by_default(
    tenants: Tenants,
) -> None:
    for scope in keys.SCOPES:
        for query in (SCHEMA, TYPE, THROUGH_FRAGMENT):
            refused = await tenants.graphql(tenants.alpha.keys[scope], query)
            assert refused.json().get("data") is None, (scope, query)
            assert "introspection has been disabled" in _errors(refused)[0]["message"]
    typename = await tenants.data(tenants.alpha.keys["ingest"], "{ __typename }")
    assert typename == {"__typename": "Query"}
    page = await tenants.http.get("/graphql", headers=HTML)
    assert page.status_code == 404 and "graphiql" not in page.text.lower()
    # `/` is the Users & Sessions page, which needs no introspection (it asks for a key).
    front = await tenants.http.get("/", follow_redirects=False)
    assert front.status_code == 200 and 'src="/page/app.js"' in front.text


async def test_switched_on_only_read_and_admin_keys_may_introspect(
    open_tenants: Tenants,
) -> None:
    alpha = open_tenants.alpha
    for scope in ("read", "admin"):
        for query in (SCHEMA, TYPE, THROUGH_FRAGMENT):
            data = await open_tenants.data(alpha.keys[scope], query)
            assert data, (scope, query)
    for query, field in ((SCHEMA, "__schema"), (TYPE, "__type"), (THROUGH_FRAGMENT, "__schema")):
        refused = await open_tenants.graphql(alpha.keys["ingest"], query)
        assert refused.status_code == 403, refused.text
        [error] = _errors(refused)
        assert error["extensions"] == {"code": "FORBIDDEN", "requiredScope": "read", "field": field}
        assert "this key has scope ingest" in error["message"]
    anonymous = await open_tenants.graphql(None, SCHEMA)
    assert anonymous.status_code == 401
    typename = await open_tenants.data(alpha.keys["ingest"], "mutation { __typename }")
    assert typename == {"__typename": "Mutation"}


async def test_switched_on_the_graphiql_page_needs_no_key(
    open_tenants: Tenants,
) -> None:
    page = await open_tenants.http.get("/graphql", headers=HTML)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # `/` is the Users & Sessions page, which holds no data either (it asks for a key).
    front = await open_tenants.http.get("/", follow_redirects=False)
    assert front.status_code == 200 and 'src="/page/app.js"' in front.text
