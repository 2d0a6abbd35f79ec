"""Issue 17.6: wide filters are bounded by a size cap and by a statement timeout.

`anyOf` of 200 × 5 event conditions took 30 s (four at once 85 s each, cheap queries
waiting 10 s); 1000 × 5 blocked the loop 15 s compiling SQL, then failed as "Unexpected
error" with a 2.2 MB log line. Over demo data on a production server whose read statements
stop after STATEMENT_TIMEOUT: filters past the size limits are refused before compiling, a
filter within them that is slow anyway is stopped and answered QUERY_TIMEOUT, cheap queries
and /healthz stay fast meanwhile, and the pool stays healthy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.settings import DEFAULT_STATEMENT_TIMEOUT, Settings
from services.limits import MAX_FILTER_CONDITIONS, MAX_REQUEST_FILTER_CONDITIONS
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

# Well under what SLOW takes on either database, far over what a page of users takes.
STATEMENT_TIMEOUT = 0.25
# A request may run a few statements, each stopped at the timeout, plus compiling.
STOPPED_WITHIN = 4 * STATEMENT_TIMEOUT + QUICK
PEOPLE = 4000  # four times the demo data set of `usertrail demo`
USERS = """query($f: UserFilter) {
  users(filter: $f, first: 10) { totalCount edges { node { userId } } } }"""
CHEAP = "{ users(first: 1) { edges { node { userId } } } }"
LONGEST_LOG_LINE = 2000


@pytest.fixture(scope="module")
async def shop(module_database_url: str) -> AsyncIterator[Shop]:
    """One keyed production server over the demo data set, shared by the module's tests."""
    async with open_shop(
        module_database_url, people=PEOPLE, statement_timeout=STATEMENT_TIMEOUT
    ) as opened:
        yield opened


def event(index: int) -> dict[str, Any]:
    """Users who viewed, at least twice, a page whose path is a number over `index` (none
    is: each pageview's path is read as text, then tried as a number)."""
    where = [{"property": "path", "op": "GREATER_THAN", "value": index}]
    return {"event": {"type": "pageview", "where": where}, "atLeast": 2}


def wide(branches: int, per_branch: int) -> dict[str, Any]:
    return {
        "seen": {"lastDays": 30},
        "anyOf": [
            {"events": [event(b * per_branch + e) for e in range(per_branch)]}
            for b in range(branches)
        ],
    }


# An OR of 25 event conditions with a `where` each: 50 conditions, the most a filter may
# hold; each statement of its users page scans every pageview 25 times (PostgreSQL, 1000
# people: 0.2 s a statement, so 0.8 s here; SQLite: seconds).
SLOW = wide(25, 1)


def _short_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        line = record.getMessage()
        assert len(line) < LONGEST_LOG_LINE, line[:300]
        assert "SELECT" not in line and record.exc_info is None, line[:300]


async def test_the_issues_200_by_5_filter_is_refused_before_compiling(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = await stored(shop)
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f=wide(200, 5)))
    assert took < QUICK, f"answered in {took:.2f} s"
    health.assert_healthy()
    error = one_error(response, "FILTER_TOO_COMPLEX")
    assert f"more than {MAX_REQUEST_FILTER_CONDITIONS} filter conditions" in error["message"]
    assert await stored(shop) == before
    _short_logs(caplog)


async def test_a_filter_over_the_conditions_limit_is_refused_naming_it(shop: Shop) -> None:
    """10 × 5 events with a `where` each: 100 conditions, within the variables' bound."""
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f=wide(10, 5)))
    assert took < QUICK
    health.assert_healthy()
    error = one_error(response, "FILTER_TOO_COMPLEX")
    assert error["extensions"]["field"] == "filter"
    assert f"the limit is {MAX_FILTER_CONDITIONS}" in error["message"]


async def test_a_slow_filter_within_the_limits_stops_at_the_statement_timeout(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = await stored(shop)
    async with watching_health(shop.url) as health:
        response, took = await timed(shop.graphql("read", USERS, f=SLOW))
    assert took < STOPPED_WITHIN, f"answered in {took:.2f} s"
    health.assert_healthy()
    error = one_error(response, "QUERY_TIMEOUT")
    assert error["message"].startswith(f"the query took longer than {STATEMENT_TIMEOUT:g} s")
    assert "narrow the filter" in error["message"]
    request_id = error["extensions"]["requestId"]
    assert request_id == response.headers["x-request-id"]
    [logged] = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged.levelno == logging.WARNING
    assert "statement timeout" in logged.getMessage()
    _short_logs(caplog)
    assert await stored(shop) == before


async def test_four_slow_filters_at_once_leave_cheap_queries_fast(shop: Shop) -> None:
    async with watching_health(shop.url) as health:
        slow = [asyncio.create_task(timed(shop.graphql("read", USERS, f=SLOW))) for _ in range(4)]
        await asyncio.sleep(STATEMENT_TIMEOUT / 2)  # the four are running
        cheap, cheap_took = await timed(shop.graphql("read", CHEAP))
        answered = await asyncio.gather(*slow)
    assert not errors_of(cheap)
    assert cheap_took < QUICK, f"a cheap query waited {cheap_took:.2f} s"
    for response, took in answered:
        assert took < 2 * STOPPED_WITHIN, f"answered in {took:.2f} s"
        one_error(response, "QUERY_TIMEOUT")
    health.assert_healthy()


async def _cheap_reads(shop: Shop) -> list[Any]:
    """More requests at once than either pool holds connections."""
    return list(await asyncio.gather(*(shop.graphql("read", CHEAP) for _ in range(24))))


def _healthy(answers: list[Any]) -> bool:
    return all(not errors_of(a) and a.json()["data"]["users"]["edges"] for a in answers)


async def test_timed_out_reads_leave_the_pool_healthy(shop: Shop) -> None:
    # Every pool connection opened first: on Citus a coordinator connection's first
    # multi-shard read also opens its connections to the workers, which on a loaded machine
    # can take longer than this module's 0.25 s timeout (later reads reuse them).
    for _ in range(5):
        if _healthy(await _cheap_reads(shop)):
            break
    for _ in range(3):
        one_error(await shop.graphql("read", USERS, f=SLOW), "QUERY_TIMEOUT")
    assert _healthy(await _cheap_reads(shop))
    # Writes still go through (they have no statement timeout).
    saved = await shop.graphql(
        "admin",
        "mutation($input: SegmentInput!) { createSegment(input: $input) { errors { code } } }",
        input={
            "name": "after the timeouts",
            "filter": {"properties": [{"property": "plan", "op": "IS_SET"}]},
        },
    )
    assert saved.json()["data"]["createSegment"]["errors"] == []


def test_the_statement_timeout_is_a_setting() -> None:
    assert Settings.from_env({}).statement_timeout == DEFAULT_STATEMENT_TIMEOUT == 10
    assert Settings.from_env({"USERTRAIL_STATEMENT_TIMEOUT": "2.5"}).statement_timeout == 2.5
    settings = Settings(statement_timeout=0)  # no limit
    assert Settings.from_env(settings.as_env()) == settings
