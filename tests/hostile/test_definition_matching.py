"""Defined-event matching cannot stall a server (issue 17, finding 5).

Before, a selector such as `a > a > … > a b` was matched by backtracking, quadratic in the
hierarchy: 100 definitions and 1000 Heap events of 4 KB hierarchies took 58 s of blocked
event loop, and anyone holding the public `app_id` can send such events. Selectors are now
matched with element masks, linear in selector and hierarchy, a large batch is matched in a
worker thread, and definitions have limits (services/limits.py) refused by name.

The bounds are generous correctness bounds against a blow-up, not benchmarks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from services import definitions, limits
from services.matching import Criterion
from tests.server.conftest import Tenants, tenants  # noqa: F401 (the fixture)

DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id } errors { field code message } }
}"""
COUNTS = "query { eventDefinitions { name eventCount } }"
RUN = 49  # the hierarchies hold runs of 49 `a`s; the chained selectors want 50
# Quadratic for the old matcher: each placement of `a` re-walked the 49-step child chain.
CHAIN = "a > " * RUN + "a b"
HEALTHZ_BOUND = 1.0  # seconds any /healthz may take while matching runs
BATCH_BOUND = 10.0  # seconds for 1000 events (the old matcher: about a minute)


def _hierarchy(index: int) -> str:
    """About 4 KB: runs of 49 `a`s; every 4th event a run of 50, every 2nd a div.shop."""
    runs = ("@a;|" * RUN + "@c;|") * 19
    deep = "@a;|" * (RUN + 1) if index % 4 == 0 else ""
    shop = "@div;.shop;|" if index % 2 == 0 else ""
    text = f"@body;|{runs}{deep}{shop}@b;.buy;#e{index};|"
    assert len(text) <= limits.MAX_HIERARCHY
    return text


async def _define(target: Tenants, name: str, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    body = await target.data(
        target.alpha.keys["admin"], DEFINE, input={"name": name, "criteria": criteria}
    )
    return body["defineEvent"]


async def _timed_with_healthz(target: Tenants, work: Awaitable[Any]) -> tuple[Any, float, float]:
    """Await `work` while polling /healthz; the result, its seconds and the slowest poll."""
    slowest = 0.0
    done = asyncio.Event()

    async def poll() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.monotonic()
            response = await target.http.get("/healthz")
            assert response.status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.05)

    poller = asyncio.create_task(poll())
    started = time.monotonic()
    try:
        result = await work
    finally:
        elapsed = time.monotonic() - started
        done.set()
        await poller
    return result, elapsed, slowest


async def test_a_thousand_deep_events_against_a_hundred_definitions(tenants: Tenants) -> None:  # noqa: F811

    for number in range(99):
        saved = await _define(
            tenants,
            f"Deep {number}",
            [{"type": "click", "selector": f"{CHAIN}.k{number}, {CHAIN}"}],
        )
        assert not saved["errors"], saved
    saved = await _define(tenants, "Bought", [{"type": "click", "selector": "div.shop > b.buy"}])
    assert not saved["errors"], saved

    events = [
        {"identity": f"visitor-{i % 50}", "event": "click", "properties": {"hierarchy": h}}
        for i, h in enumerate(map(_hierarchy, range(1000)))
    ]
    sent = tenants.http.post("/api/track", json={"app_id": tenants.alpha.app_id, "events": events})
    response, elapsed, slowest = await _timed_with_healthz(tenants, sent)

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1000
    assert elapsed < BATCH_BOUND, elapsed
    assert slowest < HEALTHZ_BOUND, slowest
    counts = {
        d["name"]: d["eventCount"]
        for d in (await tenants.data(tenants.alpha.keys["read"], COUNTS))["eventDefinitions"]
    }
    assert counts["Bought"] == 500
    assert {counts[f"Deep {n}"] for n in range(99)} == {250}


async def test_selectors_over_the_limits_are_refused_by_name(tenants: Tenants) -> None:  # noqa: F811

    cases = [
        ("x" * 4096, "INVALID_SELECTOR", f"at most {limits.MAX_SELECTOR_LENGTH} characters"),
        (
            ", ".join(["a"] * (limits.MAX_SELECTOR_ALTERNATIVES + 1)),
            "TOO_MANY_SELECTORS",
            f"at most {limits.MAX_SELECTOR_ALTERNATIVES} alternatives",
        ),
        (
            "a " * limits.MAX_SELECTOR_COMBINATORS + "a",
            "",
            "",
        ),
        (
            "a " * (limits.MAX_SELECTOR_COMBINATORS + 1) + "a",
            "SELECTOR_TOO_DEEP",
            f"at most {limits.MAX_SELECTOR_COMBINATORS} combinators",
        ),
        (
            f"b:not({'a > ' * (limits.MAX_SELECTOR_COMBINATORS + 1)}a)",
            "SELECTOR_TOO_DEEP",
            f"at most {limits.MAX_SELECTOR_COMBINATORS} combinators",
        ),
    ]
    for number, (selector, code, message) in enumerate(cases):
        saved = await _define(
            tenants, f"Limit {number}", [{"type": "click", "selector": "b"}, {"type": "click"}]
        )
        assert not saved["errors"]
        saved = await _define(
            tenants, f"Big {number}", [{"type": "click"}, {"type": "click", "selector": selector}]
        )
        if not code:
            assert not saved["errors"], saved  # just within the limit
            continue
        [error] = saved["errors"]
        assert saved["definition"] is None
        assert error["field"] == "criteria[1].selector"
        assert error["code"] == code
        assert message in error["message"]


async def test_the_biggest_selectors_allowed_match_in_bounded_time(tenants: Tenants) -> None:  # noqa: F811
    """The second fact (20 selectors of 4096 characters: 3 events took 10 s), at the limits:
    20 criteria of 20 alternatives, each selector as long as allowed."""
    alternative = f"{'a > ' * 9}a b"  # 43 characters; 20 of them, and a distinct tail
    criteria = [
        {
            "type": "click",
            "selector": (", ".join([alternative] * 19) + f", {alternative}.n{n}")[
                : limits.MAX_SELECTOR_LENGTH
            ],
        }
        for n in range(20)
    ]
    assert all(len(c["selector"]) <= limits.MAX_SELECTOR_LENGTH for c in criteria)
    saved = await _define(tenants, "Widest", criteria)
    assert not saved["errors"], saved

    events = [
        {"identity": "wide", "event": "click", "properties": {"hierarchy": _hierarchy(i)}}
        for i in range(300)
    ]
    sent = tenants.http.post("/api/track", json={"app_id": tenants.alpha.app_id, "events": events})
    response, elapsed, slowest = await _timed_with_healthz(tenants, sent)
    assert response.status_code == 200 and response.json()["accepted"] == 300
    assert elapsed < BATCH_BOUND, elapsed
    assert slowest < HEALTHZ_BOUND, slowest
    [counted] = (await tenants.data(tenants.alpha.keys["read"], COUNTS))["eventDefinitions"]
    assert counted == {"name": "Widest", "eventCount": 300}  # a run of 10 `a`s in every one


async def test_definitions_per_environment_are_limited(tenants: Tenants) -> None:  # noqa: F811

    for number in range(limits.MAX_DEFINITIONS):
        await definitions.create(
            tenants.db,
            environment_id=tenants.alpha.environment_id,
            name=f"Kind {number}",
            criteria=[Criterion(type=f"kind-{number}")],
        )
    saved = await _define(tenants, "One too many", [{"type": "click"}])
    [error] = saved["errors"]
    assert error["code"] == "TOO_MANY_DEFINITIONS" and error["field"] is None
    assert f"at most {limits.MAX_DEFINITIONS} event definitions" in error["message"]
    # Another environment has its own allowance.
    other = await tenants.data(
        tenants.beta.keys["admin"], DEFINE, input={"name": "Fine", "criteria": [{"type": "x"}]}
    )
    assert not other["defineEvent"]["errors"]
