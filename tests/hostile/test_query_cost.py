"""Issue 17.1: documents whose cost explodes once expanded are refused in milliseconds.

`fragment F_i on Query { ...F_{i-1} ...F_{i-1} }` for 21 levels, 1 KB sent with the public
ingest key, blocked a server's event loop 8.8 s (39 levels: past SIGTERM). Each shape below
is replayed against a production server while /healthz is polled: refused (or answered)
within QUICK, /healthz fast throughout, a clear error without internals, nothing stored.
"""

from __future__ import annotations

import json

import pytest

from graph.query_limits import MAX_EXPANDED_FIELDS
from services.limits import MAX_REQUEST_FILTER_CONDITIONS
from tests.hostile.probing import (
    QUICK,
    Shop,
    errors_of,
    one_error,
    stored,
    timed,
    watching_health,
)


def doubling(levels: int, base: str = "__typename") -> str:
    """The issue's query: each fragment spreads the one below twice."""
    fragments = [f"fragment F0 on Query {{ {base} }}"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


def crossed(levels: int) -> str:
    """Two fragments per level, each spreading both below: no spread repeats in a set."""
    fragments = ["fragment A0 on Query { __typename }", "fragment B0 on Query { __typename }"]
    for i in range(1, levels + 1):
        fragments += [
            f"fragment A{i} on Query {{ ...A{i - 1} ...B{i - 1} }}",
            f"fragment B{i} on Query {{ ...B{i - 1} ...A{i - 1} }}",
        ]
    return f"query {{ ...A{levels} }}\n" + "\n".join(fragments)


def through_inline_fragments(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ... on Query {{ ...F{i - 1} }} ... {{ ...F{i - 1} }} }}"
        for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


def with_directives(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} @include(if: true) ...F{i - 1} @skip(if: false) }}"
        for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


def in_users(levels: int) -> str:
    fragments = ["fragment F0 on User { userId }"] + [
        f"fragment F{i} on User {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {{ users(first: 1) {{ edges {{ node {{ ...F{levels} }} }} }} }}\n" + "\n".join(
        fragments
    )


EXPANDED = f"more than {MAX_EXPANDED_FIELDS} fields once its fragments are expanded"
BOMBS = {
    "the issue's 21 doubling levels": (doubling(21), "ingest", "QUERY_TOO_COMPLEX", EXPANDED),
    "doubling with a read key": (doubling(24), "read", "QUERY_TOO_COMPLEX", EXPANDED),
    "two fragments crossed per level": (crossed(21), "read", "QUERY_TOO_COMPLEX", EXPANDED),
    "through inline fragments": (
        through_inline_fragments(21),
        "ingest",
        "QUERY_TOO_COMPLEX",
        EXPANDED,
    ),
    "spreads under directives": (with_directives(21), "ingest", "QUERY_TOO_COMPLEX", EXPANDED),
    "doubling inside a list": (in_users(21), "read", "QUERY_TOO_COMPLEX", EXPANDED),
    "a 600-fragment chain": (
        "query { ...F600 }\n"
        + "\n".join(
            ["fragment F0 on Query { __typename }"]
            + [f"fragment F{i} on Query {{ ...F{i - 1} }}" for i in range(1, 601)]
        ),
        "ingest",
        "QUERY_TOO_COMPLEX",
        "fragments spread each other too deeply",
    ),
    "a fragment cycle": (
        "query { ...F0 }\n"
        + "\n".join(
            f"fragment F{i} on Query {{ ...F{(i + 1) % 3} ...F{(i + 1) % 3} }}" for i in range(3)
        ),
        "ingest",
        None,
        "Cannot spread fragment 'F0' within itself",
    ),
    "inline fragments nested 1000 deep": (
        "query { " + "... { " * 1000 + "__typename" + " }" * 1000 + " }",
        "ingest",
        None,
        "Document is nested too deeply",
    ),
}


@pytest.mark.parametrize("name", BOMBS)
async def test_exploding_documents_are_refused_before_validation(shop: Shop, name: str) -> None:
    query, scope, code, message = BOMBS[name]
    before = await stored(shop)
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql(scope, query))
    assert took < QUICK, f"{name}: answered in {took:.2f} s"
    health.assert_healthy()
    errors = errors_of(response)
    assert any(message in e["message"] for e in errors), errors
    if code is not None:
        assert [e["extensions"]["code"] for e in errors] == [code]
    assert response.json().get("data") is None
    assert await stored(shop) == before


async def test_a_document_just_under_the_limit_still_runs(shop: Shop) -> None:
    """1024 fields once expanded: allowed, and answered quickly (merged at execution)."""
    response, took = await timed(shop.graphql("read", doubling(10)))
    assert took < QUICK
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_inline_fragments_nested_within_the_parser_limit_answer(shop: Shop) -> None:
    query = "query { " + "... { " * 150 + "__typename" + " }" * 150 + " }"
    response, took = await timed(shop.graphql("ingest", query))
    assert took < QUICK
    assert response.json() == {"data": {"__typename": "Query"}}


# ---------------------------------------------------------------- variables


def wide_filter(branches: int, per_branch: int) -> dict[str, object]:
    return {
        "anyOf": [
            {
                "events": [
                    {"event": {"type": "pageview", "where": [{"property": "path", "op": "IS_SET"}]}}
                    for _ in range(per_branch)
                ]
            }
            for _ in range(branches)
        ]
    }


USERS = "query($f: UserFilter) { users(filter: $f) { totalCount } }"


async def test_half_a_megabyte_of_filter_variables_is_refused_before_it_is_converted(
    shop: Shop,
) -> None:
    """1000 × 5 event conditions (the issue's 15 s): refused from the raw variables."""
    huge = wide_filter(1000, 5)
    assert len(json.dumps(huge)) > 400_000
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f=huge))
    assert took < QUICK, f"answered in {took:.2f} s"
    health.assert_healthy()
    error = one_error(response, "FILTER_TOO_COMPLEX")
    assert f"more than {MAX_REQUEST_FILTER_CONDITIONS} filter conditions" in error["message"]
    assert error["extensions"]["limit"] == MAX_REQUEST_FILTER_CONDITIONS


async def test_variables_nested_past_any_stack_are_refused_quickly(shop: Shop) -> None:
    depth = 100_000
    body = '{"query": "query($f: UserFilter) { users(filter: $f) { totalCount } }", '
    body += '"variables": {"f": ' + '{"anyOf": [' * depth + "{}" + "]}" * depth + "}}"
    async with watching_health(shop.url) as health:
        response, took = await timed(
            shop.http.post(
                "/graphql",
                content=body,
                headers={
                    "authorization": f"Bearer {shop.keys['read']}",
                    "content-type": "application/json",
                },
            )
        )
    assert took < QUICK
    health.assert_healthy()
    assert response.status_code == 400
    [error] = errors_of(response)
    assert error["message"] == "Unable to parse request body as JSON"


async def test_filters_nested_deeper_than_graphql_allows_are_refused(shop: Shop) -> None:
    nested: dict[str, object] = {"properties": [{"property": "plan", "op": "IS_SET"}]}
    for _ in range(150):
        nested = {"anyOf": [nested]}
    response, took = await timed(shop.graphql("read", USERS, f=nested))
    assert took < QUICK
    [error] = errors_of(response)
    assert error["message"] == "Variable values are nested too deeply."


async def test_aliased_lists_share_one_budget_of_filter_conditions(shop: Shop) -> None:
    """Thirty aliased `users` lists each compile the same 40-condition filter: refused."""
    forty = {"anyOf": [{"properties": [{"property": f"p{i}", "op": "IS_SET"}]} for i in range(40)]}
    lists = " ".join(f"u{i}: users(filter: $f) {{ totalCount }}" for i in range(30))
    query = f"query($f: UserFilter) {{ {lists} }}"
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", query, f=forty))
    assert took < QUICK, f"answered in {took:.2f} s"
    health.assert_healthy()
    codes = {e["extensions"]["code"] for e in errors_of(response)}
    assert codes == {"FILTER_TOO_COMPLEX"}
    message = errors_of(response)[0]["message"]
    assert f"more than {MAX_REQUEST_FILTER_CONDITIONS} filter conditions in all" in message
    # Five of them fit in one request.
    five = " ".join(f"u{i}: users(filter: $f) {{ totalCount }}" for i in range(5))
    fine = await shop.graphql("read", f"query($f: UserFilter) {{ {five} }}", f=forty)
    assert not fine.json().get("errors"), fine.json()


async def test_aliased_sessions_pages_share_the_budget_too(shop: Shop) -> None:
    forty = {"userProperties": [{"property": f"p{i}", "op": "IS_SET"} for i in range(40)]}
    pages = " ".join(f"s{i}: sessions(filter: $f) {{ totalCount }}" for i in range(30))
    async with watching_health(shop.url) as health:
        response, took = await timed(
            shop.graphql("read", f"query($f: SessionFilter) {{ {pages} }}", f=forty)
        )
    assert took < QUICK, f"answered in {took:.2f} s"
    health.assert_healthy()
    errors = errors_of(response)
    assert errors and {e["extensions"]["code"] for e in errors} == {"FILTER_TOO_COMPLEX"}
    five = " ".join(f"s{i}: sessions(filter: $f) {{ totalCount }}" for i in range(5))
    fine = await shop.graphql("read", f"query($f: SessionFilter) {{ {five} }}", f=forty)
    assert not fine.json().get("errors"), fine.json()
