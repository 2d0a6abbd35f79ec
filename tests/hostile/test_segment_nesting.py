"""Issue 17.2: segments naming segments are bounded when saved and when compiled.

`S_i = anyOf [{segmentId: S_{i-1}}, {segmentId: S_{i-1}}]` for 10 levels were inlined when
compiled (2^10 copies) and `users(filter: {segmentId: S_10})` grew a SQLite server to 23 GB.
Saving refuses what would pass the limits (services/limits.py); a bomb saved before the
limits existed is refused when compiled, before any SQL is built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Segment
from services import ids
from services.clock import now_us
from services.limits import MAX_ANY_OF_DEPTH, MAX_FILTER_CONDITIONS, MAX_SEGMENT_DEPTH
from tests.hostile.probing import (
    QUICK,
    Shop,
    errors_of,
    one_error,
    open_shop,
    stored,
    timed,
    watching_health,
)

CREATE = """mutation($input: SegmentInput!) {
  createSegment(input: $input) { segment { id } errors { code field message } } }"""
UPDATE = """mutation($id: ID!, $input: SegmentInput!) {
  updateSegment(id: $id, input: $input) { segment { id } errors { code field message } } }"""
USERS = "query($f: UserFilter) { users(filter: $f, first: 5) { totalCount } }"
PRO = {"property": "plan", "op": "EQUALS", "value": "pro"}


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    async with open_shop(database_url, people=50) as opened:
        yield opened


async def save(shop: Shop, name: str, user_filter: dict[str, Any]) -> dict[str, Any]:
    """The createSegment payload."""
    response = await shop.graphql("admin", CREATE, input={"name": name, "filter": user_filter})
    assert not errors_of(response)
    payload: dict[str, Any] = response.json()["data"]["createSegment"]
    return payload


async def saved_id(shop: Shop, name: str, user_filter: dict[str, Any]) -> str:
    payload = await save(shop, name, user_filter)
    assert payload["errors"] == [], payload
    return str(payload["segment"]["id"])


def naming(segment_id: str, times: int) -> dict[str, Any]:
    return {"anyOf": [{"segmentId": segment_id}] * times}


def refusal(payload: dict[str, Any]) -> dict[str, Any]:
    """The one UserError of a refused save, which must be FILTER_TOO_COMPLEX."""
    assert payload["segment"] is None, payload
    [error] = payload["errors"]
    assert error["code"] == "FILTER_TOO_COMPLEX" and error["field"] == "input.filter", error
    return dict(error)


async def test_the_issues_doubling_chain_is_refused_at_the_depth_limit(shop: Shop) -> None:
    previous = await saved_id(shop, "S0", {"properties": [PRO]})
    for level in range(1, MAX_SEGMENT_DEPTH):
        previous = await saved_id(shop, f"S{level}", naming(previous, 2))
    before = await stored(shop)
    async with watching_health(shop.url) as health:
        payload, took = await timed(save(shop, f"S{MAX_SEGMENT_DEPTH}", naming(previous, 2)))
    assert took < QUICK
    health.assert_healthy()
    error = refusal(payload)
    assert f"more than {MAX_SEGMENT_DEPTH} levels deep" in error["message"]
    assert f"the limit is {MAX_SEGMENT_DEPTH}" in error["message"]
    assert await stored(shop) == before
    # The deepest saved segment, named twice: 2 × 2^4 conditions, compiled and answered.
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f=naming(previous, 2)))
    assert took < QUICK
    health.assert_healthy()
    assert not errors_of(response)
    assert response.json()["data"]["users"]["totalCount"] >= 0


async def test_fanning_out_past_the_conditions_limit_is_refused_when_saved(shop: Shop) -> None:
    five = {"properties": [{**PRO, "value": f"plan-{i}"} for i in range(5)]}
    base = await saved_id(shop, "five conditions", five)
    assert (await save(shop, "ten of them", naming(base, 10)))["errors"] == []
    before = await stored(shop)
    error = refusal(await save(shop, "eleven of them", naming(base, 11)))
    assert f"more than {MAX_FILTER_CONDITIONS} conditions" in error["message"]
    assert await stored(shop) == before


async def test_an_update_that_would_inflate_a_segment_naming_it_is_refused(shop: Shop) -> None:
    base = await saved_id(shop, "base", {"properties": [PRO]})
    middle = await saved_id(shop, "middle", naming(base, 5))
    await saved_id(shop, "top", naming(middle, 5))  # 25 conditions
    before = await stored(shop)
    three = {"properties": [PRO, PRO, PRO]}  # 15 in middle, 75 in top
    response = await shop.graphql("admin", UPDATE, id=base, input={"name": "base", "filter": three})
    error = refusal(response.json()["data"]["updateSegment"])
    assert "segment 'top' (which names this one)" in error["message"]
    assert f"more than {MAX_FILTER_CONDITIONS} conditions" in error["message"]
    assert await stored(shop) == before
    # Deepening the chain from below is refused the same way.
    chain = [await saved_id(shop, "c0", {"properties": [PRO]})]
    for level in range(1, MAX_SEGMENT_DEPTH):
        chain.append(await saved_id(shop, f"c{level}", {"segmentId": chain[-1]}))
    leaf = await saved_id(shop, "leaf", {"properties": [PRO]})
    before = await stored(shop)
    response = await shop.graphql(
        "admin", UPDATE, id=chain[0], input={"name": "c0", "filter": {"segmentId": leaf}}
    )
    error = refusal(response.json()["data"]["updateSegment"])
    assert f"more than {MAX_SEGMENT_DEPTH} levels deep" in error["message"]
    assert await stored(shop) == before


# ------------------------------------------- bombs saved before the limits existed


async def _saved_directly(shop: Shop, filters: list[dict[str, Any]]) -> list[str]:
    """Segments inserted as an older server saved them, unchecked; their global ids.

    A filter names earlier ones as `{"previous": k}`, replaced by the k-th segment's id.
    """
    made: list[int] = []

    def resolved(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"previous"}:
                return {"segmentId": made[value["previous"]]}
            return {key: resolved(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolved(item) for item in value]
        return value

    for index, document in enumerate(filters):
        name = f"old {index}"

        async def work(
            conn: AsyncConnection, document: dict[str, Any] = document, name: str = name
        ) -> int:
            moment = now_us()
            result = await conn.execute(
                insert(Segment.__table__)
                .values(
                    environment_id=shop.environment_id,
                    name=name,
                    name_key=name,
                    description=None,
                    filter=resolved(document),
                    created_us=moment,
                    updated_us=moment,
                )
                .returning(Segment.__table__.c.id)
            )
            return int(result.scalar_one())

        made.append(await shop.db.write(work))
    return [ids.encode("Segment", segment_id) for segment_id in made]


def doubling_chain(levels: int) -> list[dict[str, Any]]:
    return [{"properties": [PRO]}] + [
        {"anyOf": [{"previous": i}, {"previous": i}]} for i in range(levels)
    ]


async def test_the_issues_ten_level_bomb_saved_earlier_is_refused_when_compiled(
    shop: Shop,
) -> None:
    saved = await _saved_directly(shop, doubling_chain(10))
    before = await stored(shop)
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f={"segmentId": saved[10]}))
    assert took < QUICK, f"answered in {took:.2f} s"
    health.assert_healthy()
    error = one_error(response, "FILTER_TOO_COMPLEX")
    assert f"more than {MAX_SEGMENT_DEPTH} levels deep" in error["message"]
    assert error["extensions"]["field"] == "filter"
    assert await stored(shop) == before


async def test_a_wide_bomb_saved_earlier_is_refused_by_its_conditions(shop: Shop) -> None:
    """Three levels of a segment named 12 times: 1,728 copies once inlined."""
    filters = [{"properties": [PRO]}] + [{"anyOf": [{"previous": i}] * 12} for i in range(3)]
    saved = await _saved_directly(shop, filters)
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", "{ segments { name userCount } }"))
        named, named_took = await timed(shop.graphql("read", USERS, f={"segmentId": saved[3]}))
    assert took < QUICK and named_took < QUICK
    health.assert_healthy()
    error = one_error(named, "FILTER_TOO_COMPLEX")
    assert f"more than {MAX_FILTER_CONDITIONS} conditions" in error["message"]
    # userCount is refused for the big ones (the list with it, as userCount is non-null) ...
    refused = errors_of(response)
    assert refused and {e["extensions"]["code"] for e in refused} == {"FILTER_TOO_COMPLEX"}
    assert {e["path"][1] for e in refused} <= {2, 3}
    # ... while the small ones count, and the list without counts answers.
    small, _ = await timed(shop.graphql("read", USERS, f={"segmentId": saved[1]}))
    assert not errors_of(small)
    names = await shop.graphql("read", "{ segments { name } }")
    assert [s["name"] for s in names.json()["data"]["segments"]] == [f"old {i}" for i in range(4)]


# --------------------------------------------------------------- written inline


async def test_anyof_nested_past_the_limit_is_refused_inline_and_when_saved(shop: Shop) -> None:
    nested: dict[str, Any] = {"properties": [PRO]}
    for _ in range(MAX_ANY_OF_DEPTH + 1):
        nested = {"anyOf": [nested, {"properties": [PRO]}]}
    response, took = await timed(shop.graphql("read", USERS, f=nested))
    assert took < QUICK
    error = one_error(response, "INVALID_FILTER")
    assert f"anyOf nests at most {MAX_ANY_OF_DEPTH} levels" in error["message"]
    before = await stored(shop)
    payload = await save(shop, "too deep", nested)
    assert payload["segment"] is None and payload["errors"][0]["code"] == "INVALID_FILTER"
    assert await stored(shop) == before


async def test_anyof_within_the_depth_but_wide_is_refused_by_its_conditions(shop: Shop) -> None:
    """Three branches per level, five levels: 243 conditions in a 40-line query."""
    inner = '{properties: [{property: "plan", op: EQUALS, value: "pro"}]}'
    for _ in range(MAX_ANY_OF_DEPTH):
        inner = "{anyOf: [" + ", ".join([inner] * 3) + "]}"
    query = f"{{ users(filter: {inner}) {{ totalCount }} }}"
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", query))
    assert took < QUICK
    health.assert_healthy()
    error = one_error(response, "FILTER_TOO_COMPLEX")
    assert f"the limit is {MAX_FILTER_CONDITIONS}" in error["message"]
