"""Event definitions (SPEC §4): criteria, selectors, precedence; retroactive and live alike."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from models import DefinitionMatch, Event, EventDefinition
from models.db import Database
from services import definitions, environments, ingest, matching
from services.clock import to_micros
from services.conditions import PropertyCondition
from services.errors import Conflict, InvalidInput, NotFound
from services.ingest import TrackItem
from services.matching import Criterion, StringMatch
from services.sql import keys_in
from tests.factories import BASE

E = Event.__table__
M = DefinitionMatch.__table__
Key = tuple[int, int]

CHECKOUT_BUY = "@html;|@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|"
CHECKOUT_PRIMARY = "@html;|@body;|@div;#checkout;.panel;|@button;.btn-primary;|"
CHECKOUT_FORM_BUTTON = "@html;|@body;|@div;#checkout;.panel;|@form;|@button;.btn;|"
HEADER_LINK = "@html;|@body;|@nav;#header;|@a;.nav-link;[href=/pricing];|"
OLD_CHECKOUT_BUY = "@html;|@body;|@div;#checkout-old;|@button;.btn;.buy;|"
HIERARCHIES = {
    "buy": CHECKOUT_BUY,
    "primary": CHECKOUT_PRIMARY,
    "form": CHECKOUT_FORM_BUTTON,
    "link": HEADER_LINK,
    "old": OLD_CHECKOUT_BUY,
}


# ---------------------------------------------------------------- helpers


def click(
    key: str,
    hierarchy: str | None,
    *,
    text: str = "Buy",
    path: str = "/checkout",
    user: str = "11",
    at: int = 0,
) -> TrackItem:
    properties: dict[str, Any] = {"k": key, "target_text": text, "path": path}
    if hierarchy is not None:
        properties["hierarchy"] = hierarchy
    return TrackItem(
        event="click",
        user_id=user,
        source="WEB",
        timestamp=BASE + timedelta(seconds=at),
        properties=properties,
    )


def event(key: str, name: str, user: str = "11", at: int = 0, **properties: Any) -> TrackItem:
    return TrackItem(
        event=name,
        user_id=user,
        source="WEB" if name in ("pageview", "click", "change", "submit") else "SERVER",
        timestamp=BASE + timedelta(seconds=at),
        properties={"k": key, **properties},
    )


async def track(db: Database, environment_id: int, items: Sequence[TrackItem]) -> dict[str, Key]:
    """Ingest items (in batches of 1000); ingestion matches them against live definitions."""
    keys: dict[str, Key] = {}
    for start in range(0, len(items), 1000):
        batch = items[start : start + 1000]
        outcome = await ingest.track(db, environment_id=environment_id, items=batch)
        assert outcome.problems == [] and outcome.accepted == len(batch)
        stored = {batch[i].properties["k"]: key for i, key in outcome.stored.items()}
        keys.update(stored)
    return keys


async def define(db: Database, environment_id: int, name: str, *criteria: Criterion) -> Any:
    return await definitions.create(
        db, environment_id=environment_id, name=name, criteria=list(criteria)
    )


async def matched(db: Database, environment_id: int, definition_id: int) -> set[Key]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(M.c.user_id, M.c.event_id).where(
                M.c.environment_id == environment_id, M.c.definition_id == definition_id
            )
        )
        return {(row.user_id, row.event_id) for row in rows}


async def count(db: Database, environment_id: int, definition_id: int, **bounds: Any) -> int:
    async with db.read() as conn:
        return await definitions.event_count(
            conn, environment_id=environment_id, definition_id=definition_id, **bounds
        )


async def users_who_did(db: Database, environment_id: int, definition_id: int) -> set[int]:
    """Users with an event the definition matches, as the users filter asks (matched_by)."""
    events = E.alias("filtered")
    async with db.read() as conn:
        rows = await conn.execute(
            select(events.c.user_id)
            .where(
                events.c.environment_id == environment_id,
                definitions.matched_by(events, environment_id, definition_id),
            )
            .distinct()
        )
        return set(rows.scalars())


async def shown(db: Database, environment_id: int, keys: list[Key]) -> dict[Key, list[str]]:
    """Names of the definitions of each event, the one shown first."""
    async with db.read() as conn:
        found = await definitions.definitions_of_events(
            conn, environment_id=environment_id, keys=keys
        )
    return {key: [d.name for d in rows] for key, rows in found.items()}


def named(keys: dict[str, Key], *names: str) -> set[Key]:
    return {keys[name] for name in names}


async def fresh_environment(db: Database) -> int:
    return (await environments.ensure(db, name=f"env-{secrets.token_hex(4)}")).id


# ---------------------------------------------------------------- property operators

VALUES: dict[str, dict[str, Any]] = {
    "a": {"v": "Hello World"},
    "b": {"v": "hello"},
    "c": {"v": 49},
    "d": {"v": 49.5},
    "e": {"v": "49"},
    "f": {"v": True},
    "g": {"v": "true"},
    "h": {},
    "i": {"v": "/docs/intro"},
    "j": {"v": 100},
    "l": {"v": "50%_off"},
    "m": {"v": "a[b]?c"},
    "n": {"v": False},
}
EVERY = set(VALUES)

OPERATOR_CASES: list[tuple[str, Any, set[str]]] = [
    ("EQUALS", "hello", {"b"}),
    ("EQUALS", "Hello World", {"a"}),
    ("EQUALS", 49, {"c", "e"}),
    ("EQUALS", "49", {"c", "e"}),
    ("EQUALS", 49.5, {"d"}),
    ("EQUALS", True, {"f", "g"}),
    ("EQUALS", "false", {"n"}),
    ("NOT_EQUALS", "hello", EVERY - {"b"}),
    ("CONTAINS", "WORLD", {"a"}),
    ("CONTAINS", "hel", {"a", "b"}),
    ("NOT_CONTAINS", "hel", EVERY - {"a", "b"}),
    ("STARTS_WITH", "Hello", {"a"}),
    ("STARTS_WITH", "/docs", {"i"}),
    ("ENDS_WITH", "World", {"a"}),
    ("ENDS_WITH", "world", set()),
    ("MATCHES", "/docs/*", {"i"}),
    ("MATCHES", "*o*", {"a", "b", "i", "l"}),
    ("MATCHES", "hello", {"b"}),
    ("MATCHES", "hel", set()),
    ("MATCHES", "50%_off", {"l"}),
    ("MATCHES", "50__off", set()),
    ("MATCHES", "5*%*f", {"l"}),
    ("MATCHES", "a[b]?c", {"m"}),
    ("MATCHES", "a?b*", set()),
    ("IS_SET", None, EVERY - {"h"}),
    ("IS_NOT_SET", None, {"h"}),
    ("GREATER_THAN", 49, {"d", "j"}),
    ("GREATER_OR_EQUAL", 49, {"c", "d", "e", "j"}),  # "49" is numeric (SPEC §5a)
    ("LESS_THAN", "49.5", {"c", "e"}),
    ("LESS_OR_EQUAL", 49.5, {"c", "d", "e"}),
    ("GREATER_THAN", 9, {"c", "d", "e", "j"}),  # as numbers: "9" > "49" as text
    ("IN", ["hello", 100, False], {"b", "j", "n"}),
    ("IN", ["49"], {"c", "e"}),
    ("NOT_IN", ["hello", 100], EVERY - {"b", "j"}),
]


def _operator_criterion(index: int) -> Criterion:
    op, value, _ = OPERATOR_CASES[index]
    return Criterion("Purchase", properties=(PropertyCondition("v", op, value),))


def _operator_events() -> list[TrackItem]:
    return [event(key, "Purchase", **properties) for key, properties in VALUES.items()] + [
        event("other-type", "Refund", v="hello")
    ]


async def test_every_operator_retroactively_and_live(db: Database) -> None:
    retro, live = await fresh_environment(db), await fresh_environment(db)
    retro_keys = await track(db, retro, _operator_events())
    made = {}
    for index in range(len(OPERATOR_CASES)):
        made[index] = (
            await define(db, retro, f"case {index}", _operator_criterion(index)),
            await define(db, live, f"case {index}", _operator_criterion(index)),
        )
    live_keys = await track(db, live, _operator_events())
    for index, (op, value, expected) in enumerate(OPERATOR_CASES):
        retro_row, live_row = made[index]
        assert await matched(db, retro, retro_row.id) == named(retro_keys, *expected), (op, value)
        assert await matched(db, live, live_row.id) == named(live_keys, *expected), (op, value)


async def test_string_matches_on_target_text_and_path(db: Database, environment_id: int) -> None:
    keys = await track(
        db,
        environment_id,
        [
            click("cart", None, text="Add to Cart", path="/shop/shoes"),
            click("cart-blog", None, text="Add to cart", path="/blog/shoes"),
            click("buy", None, text="Buy", path="/shop/hats"),
            event("view", "pageview", path="/shop/shoes"),
        ],
    )
    row = await define(
        db,
        environment_id,
        "Add to cart in shop",
        Criterion(
            "click",
            target_text=StringMatch("CONTAINS", "to cart"),
            path=StringMatch("MATCHES", "/shop/*"),
        ),
    )
    assert await matched(db, environment_id, row.id) == named(keys, "cart")
    other = await define(
        db,
        environment_id,
        "Not on the blog",
        Criterion("click", path=StringMatch("NOT_CONTAINS", "BLOG")),
    )
    assert await matched(db, environment_id, other.id) == named(keys, "cart", "buy")


async def test_case_folding_is_unicode_on_both_databases(db: Database, environment_id: int) -> None:
    cities = [event("e", "Signup", city="ÉCOLE"), event("t", "Signup", city="İSTANBUL")]
    cities += [event("g", "Signup", city="ΟΔΟΣ"), event("c", "Signup", city="МОСКВА")]
    keys = await track(db, environment_id, cities)
    live = await fresh_environment(db)
    for needle, key in [("école", "e"), ("i̇stanbul", "t"), ("οδος", "g"), ("москва", "c")]:
        criterion = Criterion("Signup", properties=(PropertyCondition("city", "CONTAINS", needle),))
        row = await define(db, environment_id, f"in {key}", criterion)  # backfill
        assert await matched(db, environment_id, row.id) == named(keys, key), needle
        later = await define(db, live, f"in {key}", criterion)
        live_keys = await track(db, live, [c for c in cities if c.properties["k"] == key])  # live
        assert await matched(db, live, later.id) == named(live_keys, key), needle


async def test_property_names_of_any_characters_match(db: Database, environment_id: int) -> None:
    name = 'odd "key" \\ with\ttab'
    keys = await track(
        db,
        environment_id,
        [event("yes", "Purchase", **{name: "gold"}), event("no", "Purchase", **{name: "tin"})],
    )
    criterion = Criterion("Purchase", properties=(PropertyCondition(name, "EQUALS", "gold"),))
    row = await define(db, environment_id, "odd", criterion)
    assert await matched(db, environment_id, row.id) == named(keys, "yes")
    live = await fresh_environment(db)
    await define(db, live, "odd", criterion)
    live_keys = await track(
        db,
        live,
        [event("yes", "Purchase", **{name: "gold"}), event("no", "Purchase", **{name: "tin"})],
    )
    async with db.read() as conn:
        rows = (await definitions.list_(conn, environment_id=live))[0]
    assert await matched(db, live, rows.id) == named(live_keys, "yes")


# ---------------------------------------------------------------- SQL and Python agree

# A small alphabet makes values and conditions collide: case, accents, wildcards, escapes.
TEXTS = st.text(alphabet="aAéÉ*%_?[\\4.", max_size=3)
SCALARS = st.one_of(
    TEXTS,
    TEXTS,
    TEXTS,
    st.sampled_from(["49", "4.9e1", "-3", "true", "false", "", "1e999"]),
    st.integers(-100, 100),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
)


@st.composite
def conditions(draw: st.DrawFn) -> PropertyCondition:
    op = draw(st.sampled_from(sorted(matching.OPERATORS)))
    if op in ("IN", "NOT_IN"):
        return PropertyCondition("v", op, draw(st.lists(SCALARS, min_size=1, max_size=3)))
    return PropertyCondition("v", op, draw(SCALARS))


EDGES = ["é", "É", "aÉ", "A%", "a_", "[a", "a?", "49", 49, 49.0, 4.9, True, "true", None]


@given(
    values=st.lists(st.one_of(st.none(), SCALARS), min_size=1, max_size=15),
    condition=conditions(),
)
@example(values=EDGES, condition=PropertyCondition("v", "CONTAINS", "é"))
@example(values=EDGES, condition=PropertyCondition("v", "NOT_CONTAINS", "A"))
@example(values=EDGES, condition=PropertyCondition("v", "MATCHES", "*%"))
@example(values=EDGES, condition=PropertyCondition("v", "MATCHES", "a?"))
@example(values=EDGES, condition=PropertyCondition("v", "MATCHES", "[*"))
@example(values=EDGES, condition=PropertyCondition("v", "STARTS_WITH", "a_"))
@example(values=EDGES, condition=PropertyCondition("v", "ENDS_WITH", "É"))
@example(values=EDGES, condition=PropertyCondition("v", "IN", ["49", True]))
@example(values=EDGES, condition=PropertyCondition("v", "NOT_EQUALS", 49))
@example(values=EDGES, condition=PropertyCondition("v", "GREATER_OR_EQUAL", "4.9"))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_sql_and_python_matching_agree(
    db: Database, environment_id: int, values: list[Any], condition: PropertyCondition
) -> None:
    try:
        (criterion,) = matching.validate_criteria([Criterion("Purchase", properties=(condition,))])
    except InvalidInput:
        return
    rows = [
        {
            "environment_id": environment_id,
            "user_id": 1,
            "id": index,
            "session_id": 1,
            "type": "Purchase",
            "time_us": to_micros(BASE),
            "source": "SERVER",
            "properties": {} if value is None else {"v": value},
            "context": {},
            "replay": False,
            "received_us": 0,
        }
        for index, value in enumerate(values)
    ]
    test = matching.python_matcher(criterion)
    in_python = {row["id"] for row in rows if test("Purchase", row["properties"])}

    async def work(conn: Any) -> set[int]:
        await conn.execute(insert(E), rows)
        found = await conn.execute(
            select(E.c.id).where(
                E.c.environment_id == environment_id,
                matching.sql_condition(criterion, E.c.properties, dialect=db.dialect),
            )
        )
        in_sql = set(found.scalars())
        await conn.rollback()
        return in_sql

    async with db.write_engine.connect() as conn:
        assert await work(conn) == in_python


# ---------------------------------------------------------------- selectors

SELECTOR_CASES: list[tuple[str, set[str]]] = [
    (".btn", {"buy", "form", "old"}),  # not .btn-primary
    (".btn-primary", {"primary"}),
    ("#checkout > button", {"buy", "primary"}),  # not the grandchild in the form
    ("#checkout button", {"buy", "primary", "form"}),
    ("#checkout", set()),  # the subject is the clicked element
    ("button.btn.buy", {"buy", "old"}),
    ("div#checkout.panel > button.buy", {"buy"}),
    ("[data-sku]", {"buy"}),
    ("[data-sku='42']", {"buy"}),
    ("[data-sku='4']", set()),
    ("[href^='/pri']", {"link"}),
    ("[href*=ric]", {"link"}),
    ("a, .btn-primary", {"link", "primary"}),
    ("nav a", {"link"}),
    ("body > a", set()),
    ("BUTTON.buy", {"buy", "old"}),
    (":not(.btn)", {"primary", "link"}),
]


async def test_selectors_with_near_misses_retroactively_and_live(db: Database) -> None:
    retro, live = await fresh_environment(db), await fresh_environment(db)
    items = [click(name, hierarchy) for name, hierarchy in HIERARCHIES.items()] + [
        click("no-hierarchy", None),
        event("submit", "submit", hierarchy=CHECKOUT_BUY),
    ]
    retro_keys = await track(db, retro, items)
    made = {}
    for index, (selector, _) in enumerate(SELECTOR_CASES):
        criterion = Criterion("click", selector=selector)
        made[selector] = (
            await define(db, retro, f"s{index}", criterion),
            await define(db, live, f"s{index}", criterion),
        )
    live_keys = await track(db, live, items)
    for selector, expected in SELECTOR_CASES:
        retro_row, live_row = made[selector]
        assert await matched(db, retro, retro_row.id) == named(retro_keys, *expected), selector
        assert await matched(db, live, live_row.id) == named(live_keys, *expected), selector


async def test_selector_narrowed_by_path_and_text(db: Database, environment_id: int) -> None:
    keys = await track(
        db,
        environment_id,
        [
            click("a", CHECKOUT_BUY, text="Buy", path="/checkout"),
            click("b", CHECKOUT_BUY, text="Buy", path="/cart"),
            click("c", CHECKOUT_BUY, text="Buy now", path="/checkout"),
            click("d", CHECKOUT_PRIMARY, text="Buy", path="/checkout"),
        ],
    )
    row = await define(
        db,
        environment_id,
        "Buy on checkout",
        Criterion(
            "click",
            selector=".buy",
            target_text=StringMatch("EQUALS", "Buy"),
            path=StringMatch("EQUALS", "/checkout"),
        ),
    )
    assert await matched(db, environment_id, row.id) == named(keys, "a")


# ---------------------------------------------------------------- combos and precedence


async def test_combo_event_is_an_or_counted_once(db: Database, environment_id: int) -> None:
    keys = await track(
        db,
        environment_id,
        [
            click("buy", CHECKOUT_BUY, path="/pricing"),
            click("link", HEADER_LINK, path="/"),
            event("pricing", "pageview", path="/pricing"),
            event("home", "pageview", path="/"),
            event("paid", "Invoice Paid", amount=10),
        ],
    )
    row = await define(
        db,
        environment_id,
        "Interest in buying",
        Criterion("click", selector=".buy"),
        Criterion("pageview", path=StringMatch("EQUALS", "/pricing")),
        Criterion("click", path=StringMatch("EQUALS", "/pricing")),  # matches "buy" again
        Criterion("Invoice Paid"),
    )
    assert await matched(db, environment_id, row.id) == named(keys, "buy", "pricing", "paid")
    assert await count(db, environment_id, row.id) == 3


async def test_precedence_most_conditions_then_oldest(db: Database) -> None:
    for live in (False, True):
        environment_id = await fresh_environment(db)
        items = [
            click("target", CHECKOUT_BUY, text="Buy", path="/checkout"),
            click("plain", CHECKOUT_PRIMARY, text="Other", path="/x"),
        ]
        keys = {} if live else await track(db, environment_id, items)
        for name, criteria in [
            ("Any click", [Criterion("click")]),
            ("Buy button", [Criterion("click", selector=".buy")]),
            (
                "Buy with text",
                [Criterion("click", selector=".buy", target_text=StringMatch("EQUALS", "Buy"))],
            ),
            (
                "Checkout buy",  # as many conditions, younger: after "Buy with text"
                [Criterion("click", selector=".buy", path=StringMatch("EQUALS", "/checkout"))],
            ),
            (
                "Combo",  # its 0-condition criterion catches "plain"; its 3-condition one "target"
                [
                    Criterion("click"),
                    Criterion(
                        "click",
                        selector="button",
                        path=StringMatch("STARTS_WITH", "/check"),
                        target_text=StringMatch("IS_SET"),
                    ),
                ],
            ),
        ]:
            await definitions.create(
                db, environment_id=environment_id, name=name, criteria=criteria
            )
        if live:
            keys = await track(db, environment_id, items)
        found = await shown(db, environment_id, list(keys.values()))
        assert found[keys["target"]] == [
            "Combo",
            "Buy with text",
            "Checkout buy",
            "Buy button",
            "Any click",
        ]
        assert found[keys["plain"]] == ["Any click", "Combo"]
        assert await best_in_sql(db, environment_id) == {
            keys["target"]: "Combo",
            keys["plain"]: "Any click",
        }


async def best_in_sql(db: Database, environment_id: int) -> dict[Key, str | None]:
    """The definition shown for each event, as SQL groups them (best_definition_id)."""
    D = EventDefinition.__table__
    best = definitions.best_definition_id(E, environment_id).label("best")
    async with db.read() as conn:
        rows = await conn.execute(
            select(E.c.user_id, E.c.id, D.c.name)
            .select_from(E.outerjoin(D, D.c.id == best))
            .where(E.c.environment_id == environment_id)
        )
        return {(row.user_id, row.id): row.name for row in rows}


async def test_events_without_definitions(db: Database, environment_id: int) -> None:
    keys = await track(db, environment_id, [event("x", "Signup")])
    assert await shown(db, environment_id, [keys["x"], (1, 2)]) == {keys["x"]: [], (1, 2): []}
    assert await best_in_sql(db, environment_id) == {keys["x"]: None}


# ---------------------------------------------------------------- editing


async def test_update_and_delete_change_matches_and_counts(
    db: Database, environment_id: int
) -> None:
    keys = await track(
        db,
        environment_id,
        [
            click("buy", CHECKOUT_BUY, at=0),
            click("primary", CHECKOUT_PRIMARY, at=60),
            click("link", HEADER_LINK, at=120),
        ],
    )
    row = await define(db, environment_id, "Checkout", Criterion("click", selector=".buy"))
    assert await count(db, environment_id, row.id) == 1
    updated = await definitions.update(
        db,
        environment_id=environment_id,
        definition_id=row.id,
        name="Checkout buttons",
        description="any button in #checkout",
        criteria=[Criterion("click", selector="#checkout button")],
    )
    assert (updated.name, updated.color, updated.description) == (
        "Checkout buttons",
        row.color,
        "any button in #checkout",
    )
    assert updated.created_us == row.created_us
    assert await matched(db, environment_id, row.id) == named(keys, "buy", "primary")
    middle = to_micros(BASE + timedelta(seconds=30))
    assert await count(db, environment_id, row.id, from_us=middle) == 1
    assert await count(db, environment_id, row.id, to_us=middle) == 1
    assert (await shown(db, environment_id, [keys["primary"]]))[keys["primary"]] == [
        "Checkout buttons"
    ]
    renamed = await definitions.update(
        db,
        environment_id=environment_id,
        definition_id=row.id,
        name="Checkout",
        color="#ABCDEF",
        criteria=[Criterion("click", selector="#checkout button")],
    )
    assert renamed.color == "#abcdef"
    assert await matched(db, environment_id, row.id) == named(keys, "buy", "primary")
    assert await definitions.delete(db, environment_id=environment_id, definition_id=row.id) == (
        row.id
    )
    assert await count(db, environment_id, row.id) == 0
    assert await shown(db, environment_id, [keys["buy"]]) == {keys["buy"]: []}
    async with db.read() as conn:
        assert (
            await definitions.get(conn, environment_id=environment_id, definition_id=row.id) is None
        )
    with pytest.raises(NotFound) as missing:
        await definitions.delete(db, environment_id=environment_id, definition_id=row.id)
    assert missing.value.code == "UNKNOWN_DEFINITION"


async def test_defined_after_ten_thousand_events(db: Database, environment_id: int) -> None:
    items = []
    for index in range(10_000):
        user, at = str(100 + index % 40), index
        if index % 4 == 0:
            items.append(click(f"e{index}", CHECKOUT_BUY, user=user, at=at))
        elif index % 4 == 1:
            items.append(click(f"e{index}", CHECKOUT_PRIMARY, user=user, at=at))
        elif index % 4 == 2:
            items.append(event(f"e{index}", "pageview", user=user, at=at, path="/checkout"))
        else:
            items.append(event(f"e{index}", "Invoice Paid", user=user, at=at, amount=index))
    keys = await track(db, environment_id, items)
    buyers = {keys[f"e{i}"][0] for i in range(0, 10_000, 4)}
    row = await define(db, environment_id, "Buy", Criterion("click", selector="button.buy"))
    assert await count(db, environment_id, row.id) == 2500
    assert {user for user, _ in await matched(db, environment_id, row.id)} == buyers
    assert await users_who_did(db, environment_id, row.id) == buyers
    old = [keys["e0"], keys["e1"]]
    assert await shown(db, environment_id, old) == {old[0]: ["Buy"], old[1]: []}
    new = await track(
        db,
        environment_id,
        [click("new-buy", CHECKOUT_BUY, at=20_000), click("new-other", HEADER_LINK, at=20_001)],
    )
    assert await count(db, environment_id, row.id) == 2501
    assert (await shown(db, environment_id, [new["new-buy"]]))[new["new-buy"]] == ["Buy"]
    await definitions.update(
        db,
        environment_id=environment_id,
        definition_id=row.id,
        name="Buy",
        criteria=[
            Criterion("click", selector="#checkout > button"),
            Criterion("Invoice Paid", properties=(PropertyCondition("amount", "LESS_THAN", 400),)),
        ],
    )
    # 2501 buy + 2500 primary clicks, and amounts 3, 7, ..., 399 (100 events)
    assert await count(db, environment_id, row.id) == 2501 + 2500 + 100
    assert await shown(db, environment_id, [keys["e1"], keys["e3"], keys["e403"]]) == {
        keys["e1"]: ["Buy"],
        keys["e3"]: ["Buy"],
        keys["e403"]: [],
    }
    doers = {keys[f"e{i}"][0] for i in range(10_000) if i % 4 < 2 or (i % 4 == 3 and i < 400)}
    assert await users_who_did(db, environment_id, row.id) == doers | {new["new-buy"][0]}
    await definitions.delete(db, environment_id=environment_id, definition_id=row.id)
    assert await count(db, environment_id, row.id) == 0
    assert await matched(db, environment_id, row.id) == set()
    assert await users_who_did(db, environment_id, row.id) == set()


# ---------------------------------------------------------------- fromEventId


async def test_from_event_builds_type_path_text_and_selector(
    db: Database, environment_id: int
) -> None:
    keys = await track(
        db,
        environment_id,
        [
            click("source", CHECKOUT_BUY, text="Buy", path="/checkout", at=0),
            click("same", CHECKOUT_BUY, text="Buy", path="/checkout", at=10, user="12"),
            click("other-path", CHECKOUT_BUY, text="Buy", path="/cart", at=20),
            click("other-element", OLD_CHECKOUT_BUY, text="Buy", path="/checkout", at=30),
            event("view", "pageview", path="/checkout", at=40),
        ],
    )
    async with db.read() as conn:
        criterion = await definitions.criterion_from_event(
            conn,
            environment_id=environment_id,
            user_id=keys["source"][0],
            event_id=keys["source"][1],
        )
    assert criterion.type == "click"
    assert criterion.path == StringMatch("EQUALS", "/checkout")
    assert criterion.target_text == StringMatch("EQUALS", "Buy")
    assert criterion.selector == 'div#checkout.panel > button.btn.buy[data-sku="42"]'
    row = await definitions.create(
        db, environment_id=environment_id, name="From event", criteria=[], from_event=keys["source"]
    )
    assert definitions.criteria_of(row) == [criterion]
    assert await matched(db, environment_id, row.id) == named(keys, "source", "same")
    page = await definitions.create(
        db,
        environment_id=environment_id,
        name="Checkout page or source",
        criteria=[Criterion("pageview", path=StringMatch("EQUALS", "/checkout"))],
        from_event=keys["view"],
    )
    assert definitions.criteria_of(page) == [
        Criterion("pageview", path=StringMatch("EQUALS", "/checkout"))
    ]
    with pytest.raises(NotFound) as missing:
        await definitions.create(
            db, environment_id=environment_id, name="Nope", criteria=[], from_event=(1, 1)
        )
    assert (missing.value.field, missing.value.code) == ("fromEventId", "UNKNOWN_EVENT")


# ---------------------------------------------------------------- validation and isolation

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"name": " "}, "name", "INVALID_NAME"),
    ({"name": "ß" * 200}, "name", "INVALID_NAME"),  # 400 characters once case-folded
    ({"color": "red"}, "color", "INVALID_COLOR"),
    ({"criteria": []}, "criteria", "NO_CRITERIA"),
    ({"criteria": [Criterion("")]}, "criteria[0].type", "INVALID_EVENT_NAME"),
    (
        {"criteria": [Criterion("click"), Criterion("click", selector="button[")]},
        "criteria[1].selector",
        "INVALID_SELECTOR",
    ),
    (
        {"criteria": [Criterion("click", selector="a ~ b")]},
        "criteria[0].selector",
        "INVALID_SELECTOR",
    ),
    (
        {"criteria": [Criterion("click", path=StringMatch("GREATER_THAN", "3"))]},
        "criteria[0].path.op",
        "INVALID_OPERATOR",
    ),
    (
        {"criteria": [Criterion("click", target_text=StringMatch("EQUALS"))]},
        "criteria[0].targetText.value",
        "MISSING_VALUE",
    ),
    (
        {"criteria": [Criterion("x", properties=(PropertyCondition("a", "LIKE", "b"),))]},
        "criteria[0].properties[0].op",
        "INVALID_OPERATOR",
    ),
    (
        {"criteria": [Criterion("x", properties=(PropertyCondition("a", "GREATER_THAN", "b"),))]},
        "criteria[0].properties[0].value",
        "INVALID_VALUE",
    ),
    (
        {"criteria": [Criterion("x", properties=(PropertyCondition("a", "IN", []),))]},
        "criteria[0].properties[0].value",
        "MISSING_VALUE",
    ),
    (
        {"criteria": [Criterion("x", properties=(PropertyCondition("a", "EQUALS", {"n": 1}),))]},
        "criteria[0].properties[0].value",
        "INVALID_VALUE",
    ),
    (
        {"criteria": [Criterion("x", properties=(PropertyCondition("", "IS_SET"),))]},
        "criteria[0].properties[0].property",
        "INVALID_PROPERTY_NAME",
    ),
]


@pytest.mark.parametrize(("change", "field", "code"), INVALID, ids=[i[2] for i in INVALID])
async def test_invalid_input_names_field_and_code(
    db: Database, environment_id: int, change: dict[str, Any], field: str, code: str
) -> None:
    arguments = {"name": "Fine", "criteria": [Criterion("click")]} | change
    with pytest.raises(InvalidInput) as error:
        await definitions.create(db, environment_id=environment_id, **arguments)
    assert (error.value.field, error.value.code) == (field, code)


async def test_selector_errors_carry_the_parser_reason(db: Database, environment_id: int) -> None:
    with pytest.raises(InvalidInput) as error:
        await define(db, environment_id, "Bad", Criterion("click", selector="button["))
    assert "not valid CSS" in error.value.message


async def test_names_are_unique_per_environment_ignoring_case(
    db: Database, environment_id: int
) -> None:
    first = await define(db, environment_id, "Sign Up", Criterion("Signed Up"))
    with pytest.raises(Conflict) as taken:
        await define(db, environment_id, "sign up", Criterion("click"))
    assert (taken.value.field, taken.value.code) == ("name", "NAME_TAKEN")
    other = await define(db, environment_id, "Other", Criterion("click"))
    with pytest.raises(Conflict):
        await definitions.update(
            db,
            environment_id=environment_id,
            definition_id=other.id,
            name="SIGN UP",
            criteria=[Criterion("click")],
        )
    elsewhere = await fresh_environment(db)
    assert (await define(db, elsewhere, "Sign Up", Criterion("click"))).name == "Sign Up"
    same = await definitions.update(
        db,
        environment_id=environment_id,
        definition_id=first.id,
        name="SIGN UP",
        criteria=[Criterion("Signed Up")],
    )
    assert same.name == "SIGN UP"


async def test_default_colours_come_from_the_palette(db: Database, environment_id: int) -> None:
    colours = [
        (await define(db, environment_id, f"d{i}", Criterion("click"))).color for i in range(3)
    ]
    assert colours == list(definitions.PALETTE[:3])


async def run_hook(db: Database, environment_id: int, keys: list[Key]) -> None:
    """Run the ingestion hook again on stored events (it must add nothing)."""

    async def work(conn: Any) -> None:
        found = await conn.execute(
            select(E).where(
                E.c.environment_id == environment_id, keys_in((E.c.user_id, E.c.id), keys)
            )
        )
        rows = [dict(row._mapping) for row in found]
        await definitions.match_new_events(conn, environment_id=environment_id, rows=rows)

    await db.write(work)


async def test_environments_do_not_see_each_other(db: Database) -> None:
    mine, theirs = await fresh_environment(db), await fresh_environment(db)
    my_keys = await track(db, mine, [click("mine", CHECKOUT_BUY)])
    their_keys = await track(db, theirs, [click("theirs", CHECKOUT_BUY)])
    row = await define(db, mine, "Buy", Criterion("click", selector=".buy"))
    await run_hook(db, theirs, list(their_keys.values()))
    assert await matched(db, mine, row.id) == named(my_keys, "mine")
    assert await matched(db, theirs, row.id) == set()
    async with db.read() as conn:
        assert await definitions.get(conn, environment_id=theirs, definition_id=row.id) is None
        assert await definitions.list_(conn, environment_id=theirs) == []
    with pytest.raises(NotFound):
        await definitions.update(
            db, environment_id=theirs, definition_id=row.id, name="x", criteria=[Criterion("a")]
        )


async def test_live_matching_is_idempotent(db: Database, environment_id: int) -> None:
    row = await define(db, environment_id, "Buy", Criterion("click", selector=".buy"))
    keys = await track(db, environment_id, [click("a", CHECKOUT_BUY)])
    await run_hook(db, environment_id, list(keys.values()))
    assert await count(db, environment_id, row.id) == 1


async def test_merge_moves_matches(db: Database, environment_id: int) -> None:
    await track(db, environment_id, [event("known", "Signed Up", user="500")])
    await ingest.identify(db, environment_id=environment_id, user_id="500", identity="ada")
    anon = await track(db, environment_id, [click("anon", CHECKOUT_BUY, user="501")])
    row = await define(db, environment_id, "Buy", Criterion("click", selector=".buy"))

    async def before_merge(conn: Any) -> None:
        # What identity.merge does first once wired (idempotent: it may then run twice).
        await definitions.on_merge(
            conn, environment_id=environment_id, source_id=501, target_id=500
        )

    await db.write(before_merge)
    done = await ingest.identify(db, environment_id=environment_id, user_id="501", identity="ada")
    assert (done.user_id, done.merged) == (500, True)
    assert await matched(db, environment_id, row.id) == {(500, anon["anon"][1])}
    async with db.read() as conn:
        users = await conn.scalar(select(func.count()).select_from(M).where(M.c.user_id == 501))
    assert users == 0


async def test_no_event_is_missed_while_a_definition_is_created(
    db: Database, environment_id: int
) -> None:
    """Batches committing during a backfill are matched by it or by their own hook."""

    async def ingest_batch(batch: int) -> None:
        rows = [
            {
                "environment_id": environment_id,
                "user_id": 1000 + batch,
                "id": index,
                "session_id": 1,
                "type": "click",
                "time_us": to_micros(BASE) + index,
                "source": "WEB",
                "properties": {"hierarchy": CHECKOUT_BUY if index % 2 else HEADER_LINK},
                "context": {},
                "replay": False,
                "received_us": 0,
            }
            for index in range(200)
        ]

        async def work(conn: Any) -> None:
            await conn.execute(insert(E), rows)
            await definitions.match_new_events(conn, environment_id=environment_id, rows=rows)
            # Commit a little after reading the definitions: the window a backfill could miss.
            await asyncio.sleep(0.01)

        await asyncio.sleep(batch * 0.003)
        await db.write(work)

    async def define_later() -> Any:
        await asyncio.sleep(0.04)
        return await define(db, environment_id, "Buy", Criterion("click", selector=".buy"))

    *_, row = await asyncio.gather(*(ingest_batch(b) for b in range(30)), define_later())
    assert await count(db, environment_id, row.id) == 30 * 100
