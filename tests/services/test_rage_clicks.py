"""Rage clicks (SPEC §3): 3+ clicks on one element at most 1 s apart, in any arrival order."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, tuple_

from models import Event
from models.db import Database
from services import environments, ingest, rage_clicks
from services.ingest import TrackItem
from services.rage_clicks import Click, rage_click_ids
from tests.factories import BASE

E = Event.__table__
Key = tuple[int, int]
SECOND = 1_000_000

ELEMENTS: dict[str, dict[str, Any]] = {
    "buy": {
        "hierarchy": "@body;|@div;#checkout;|@button;.btn;.buy;|",
        "path": "/checkout",
        "target_text": "Buy",
    },
    "buy-2": {  # same path and text, another element
        "hierarchy": "@body;|@div;#checkout;|@button;.btn;.buy;.secondary;|",
        "path": "/checkout",
        "target_text": "Buy",
    },
    "text-only": {"path": "/checkout", "target_text": "Buy"},
    "text-only-other": {"path": "/checkout", "target_text": "Cancel"},
    "nothing": {},
}


def tap(key: str, at_us: int, element: str = "buy", user: str = "21", name: str = "click") -> Any:
    """A click (or another event) `at_us` microseconds after BASE."""
    return TrackItem(
        event=name,
        user_id=user,
        source="WEB",
        timestamp=BASE + timedelta(microseconds=at_us),
        properties={"k": key, **ELEMENTS[element]},
    )


async def fresh_environment(db: Database) -> int:
    return (await environments.ensure(db, name=f"rage-{secrets.token_hex(4)}")).id


async def ingest_batches(
    db: Database, environment_id: int, batches: Sequence[Sequence[TrackItem]]
) -> dict[str, Key]:
    """Ingest each batch; ingestion records the rage clicks it completes."""
    keys: dict[str, Key] = {}
    for batch in batches:
        outcome = await ingest.track(db, environment_id=environment_id, items=list(batch))
        assert outcome.problems == [] and outcome.accepted == len(batch)
        stored = {batch[i].properties["k"]: key for i, key in outcome.stored.items()}
        keys.update(stored)
    return keys


async def run_hook(db: Database, environment_id: int, keys: list[Key]) -> None:
    """Run the ingestion hook again on stored events (it must change nothing)."""

    async def work(conn: Any) -> None:
        found = await conn.execute(
            select(E).where(
                E.c.environment_id == environment_id, tuple_(E.c.user_id, E.c.id).in_(keys)
            )
        )
        rows = [dict(row._mapping) for row in found]
        await rage_clicks.update_rage_clicks(conn, environment_id=environment_id, rows=rows)

    await db.write(work)


async def rage_names(db: Database, environment_id: int, keys: dict[str, Key]) -> set[str]:
    async with db.read() as conn:
        found = await rage_clicks.rage_click_events(
            conn, environment_id=environment_id, keys=list(keys.values())
        )
    return {name for name, key in keys.items() if key in found}


def expected_rage(items: Sequence[TrackItem]) -> set[str]:
    """The pure rule applied to the items (an element is one user's)."""
    clicks = []
    for index, item in enumerate(items):
        element = rage_clicks.element_of(item.properties)
        if item.event == "click" and element is not None:
            at = (item.timestamp - BASE) // timedelta(microseconds=1)
            clicks.append(Click(index, at, f"{item.user_id} {element}"))
    return {items[index].properties["k"] for index in rage_click_ids(clicks)}


# ---------------------------------------------------------------- bursts

BURSTS: list[tuple[str, list[int], set[int]]] = [
    ("burst of 2", [0, 400_000], set()),
    ("burst of 3", [0, 400_000, 800_000], {0, 1, 2}),
    ("burst of 5", [0, 200_000, 400_000, 600_000, 800_000], {0, 1, 2, 3, 4}),
    ("gaps just under 1 s", [0, 999_000, 1_998_000], {0, 1, 2}),
    ("gaps of exactly 1 s", [0, SECOND, 2 * SECOND], {0, 1, 2}),
    ("gaps just over 1 s", [0, 1_001_000, 2_002_000], set()),
    ("one gap just over 1 s", [0, 500_000, 1_501_000, 2_000_000], set()),
    ("burst then stragglers", [0, 300_000, 600_000, 2_000_000, 2_300_000], {0, 1, 2}),
    ("microseconds over", [0, 1_000_001, 1_500_000], set()),
]


@pytest.mark.parametrize(("times", "rage"), [b[1:] for b in BURSTS], ids=[b[0] for b in BURSTS])
def test_pure_rule(times: list[int], rage: set[int]) -> None:
    assert rage_click_ids(Click(i, t, "e") for i, t in enumerate(times)) == rage


@pytest.mark.parametrize(("times", "rage"), [b[1:] for b in BURSTS], ids=[b[0] for b in BURSTS])
async def test_stored_bursts(db: Database, times: list[int], rage: set[int]) -> None:
    environment_id = await fresh_environment(db)
    keys = await ingest_batches(
        db, environment_id, [[tap(f"c{i}", t) for i, t in enumerate(times)]]
    )
    assert await rage_names(db, environment_id, keys) == {f"c{i}" for i in rage}


async def test_different_elements_do_not_make_a_burst(db: Database, environment_id: int) -> None:
    # buy at 0, 0.6 s, 1.2 s is a burst; buy-2 in between has only two clicks.
    items = [
        tap("a0", 0, "buy"),
        tap("b0", 300_000, "buy-2"),
        tap("a1", 600_000, "buy"),
        tap("b1", 900_000, "buy-2"),
        tap("a2", 1_200_000, "buy"),
        tap("x0", 0, "text-only"),  # same path and text as "buy", but another element
    ]
    keys = await ingest_batches(db, environment_id, [items])
    assert await rage_names(db, environment_id, keys) == {"a0", "a1", "a2"}


async def test_same_path_and_text_without_hierarchy(db: Database, environment_id: int) -> None:
    items = [
        tap("t0", 0, "text-only"),
        tap("t1", 500_000, "text-only"),
        tap("t2", 1_000_000, "text-only"),
        tap("o0", 250_000, "text-only-other"),
        tap("o1", 750_000, "text-only-other"),
        tap("n0", 0, "nothing"),  # no hierarchy, path or text: the element is unknown
        tap("n1", 100_000, "nothing"),
        tap("n2", 200_000, "nothing"),
    ]
    keys = await ingest_batches(db, environment_id, [items])
    assert await rage_names(db, environment_id, keys) == {"t0", "t1", "t2"}


async def test_only_clicks_of_one_user_count(db: Database, environment_id: int) -> None:
    items = [
        tap("s0", 0, name="submit"),
        tap("s1", 100_000, name="submit"),
        tap("s2", 200_000, name="submit"),
        tap("u0", 0, user="31"),
        tap("u1", 300_000, user="31"),
        tap("v0", 600_000, user="32"),
    ]
    keys = await ingest_batches(db, environment_id, [items])
    assert await rage_names(db, environment_id, keys) == set()


# ---------------------------------------------------------------- arrival order


async def test_a_late_click_joins_two_pairs(db: Database, environment_id: int) -> None:
    pairs = [tap("c0", 0), tap("c1", 900_000), tap("c3", 2_700_000), tap("c4", 3_600_000)]
    keys = await ingest_batches(db, environment_id, [pairs])
    assert await rage_names(db, environment_id, keys) == set()
    keys |= await ingest_batches(db, environment_id, [[tap("c2", 1_800_000)]])
    assert await rage_names(db, environment_id, keys) == {"c0", "c1", "c2", "c3", "c4"}


async def test_a_long_chain_arriving_backwards(db: Database, environment_id: int) -> None:
    # Pairs every 0.9 s with every third click missing; the missing ones arrive last, newest
    # first, each joining runs that reach far beyond the window around it.
    times = {f"c{i:02d}": i * 900_000 for i in range(30)}
    late = sorted((k for k in times if int(k[1:]) % 3 == 2), reverse=True)
    keys = await ingest_batches(
        db, environment_id, [[tap(k, t) for k, t in times.items() if k not in late]]
    )
    assert await rage_names(db, environment_id, keys) == set()
    for key in late:
        keys |= await ingest_batches(db, environment_id, [[tap(key, times[key])]])
    assert await rage_names(db, environment_id, keys) == set(times)


GAPS = st.sampled_from([0, 300_000, 999_000, SECOND, 1_001_000, 2_500_000])


@st.composite
def click_sets(draw: st.DrawFn) -> list[TrackItem]:
    count = draw(st.integers(1, 14))
    items, at = [], 0
    for index in range(count):
        at += draw(GAPS)
        element = draw(st.sampled_from(["buy", "buy", "buy-2", "text-only", "nothing"]))
        user = draw(st.sampled_from(["41", "41", "42"]))
        name = draw(st.sampled_from(["click", "click", "click", "change"]))
        items.append(tap(f"c{index}", at, element, user, name))
    return items


@given(data=st.data(), items=click_sets())
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_arrival_order_gives_the_pure_rage_set(
    db: Database, data: st.DataObject, items: list[TrackItem]
) -> None:
    order = data.draw(st.permutations(items))
    cuts = data.draw(st.lists(st.integers(1, max(1, len(items) - 1)), max_size=4))
    bounds = sorted({0, len(order), *(c for c in cuts if c < len(order))})
    batches = [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    environment_id = await fresh_environment(db)
    keys = await ingest_batches(db, environment_id, batches)
    assert await rage_names(db, environment_id, keys) == expected_rage(items)


# ---------------------------------------------------------------- reads, hooks


async def test_sessions_with_rage_clicks(db: Database, environment_id: int) -> None:
    later = 40 * 60 * SECOND  # past the 30-minute web timeout: another session
    items = [tap("a", 0), tap("b", 300_000), tap("c", 600_000), tap("d", later), tap("e", later)]
    keys = await ingest_batches(db, environment_id, [items])
    async with db.read() as conn:
        sessions = {
            name: (row.user_id, row.session_id)
            for name, key in keys.items()
            for row in await conn.execute(
                select(E.c.user_id, E.c.session_id).where(
                    E.c.environment_id == environment_id,
                    E.c.user_id == key[0],
                    E.c.id == key[1],
                )
            )
        }
        assert sessions["a"] != sessions["d"]
        flagged = await rage_clicks.sessions_with_rage_clicks(
            conn, environment_id=environment_id, session_keys=[sessions["a"], sessions["d"]]
        )
    assert flagged == {sessions["a"]}


async def test_the_hook_is_idempotent(db: Database, environment_id: int) -> None:
    keys = await ingest_batches(db, environment_id, [[tap("a", 0), tap("b", 1), tap("c", 2)]])
    await run_hook(db, environment_id, list(keys.values()))
    assert await rage_names(db, environment_id, keys) == {"a", "b", "c"}


async def test_merge_completes_bursts(db: Database, environment_id: int) -> None:
    known = await ingest_batches(db, environment_id, [[tap("k", 1_000_000, user="500")]])
    await ingest.identify(db, environment_id=environment_id, user_id="500", identity="ada")
    anonymous = await ingest_batches(
        db,
        environment_id,
        [
            [
                tap("a0", 0, user="501"),
                tap("a1", 500_000, user="501"),
                tap("r0", 60 * SECOND, user="501"),
                tap("r1", 60 * SECOND + 1, user="501"),
                tap("r2", 60 * SECOND + 2, user="501"),
            ]
        ],
    )
    assert await rage_names(db, environment_id, known | anonymous) == {"r0", "r1", "r2"}

    async def before_merge(conn: Any) -> None:
        # What identity.merge does first once wired (idempotent: it may then run twice).
        await rage_clicks.on_merge(
            conn, environment_id=environment_id, source_id=501, target_id=500
        )

    await db.write(before_merge)
    done = await ingest.identify(db, environment_id=environment_id, user_id="501", identity="ada")
    assert done.merged
    moved = {name: (500, event_id) for name, (_, event_id) in (known | anonymous).items()}
    assert await rage_names(db, environment_id, moved) == {"k", "a0", "a1", "r0", "r1", "r2"}
