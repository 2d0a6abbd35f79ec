"""Users filters with event conditions run two plans: a users page probes each user's events
(`Compiler.users(per_user=True)`), counts group the matching events (the set-wise plan).

Both plans must select the same users for every shape of event condition; pages walked in
small steps cover the probe window and its set-wise fallback; the statements of a page do
not grow with its size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.db import Database
from services import definitions, environments, ids, segments
from services.clock import to_micros
from services.filters import Compiler, UserFilter
from services.listing import U
from tests import population
from tests.conftest import RunningServer
from tests.population import PUser, holds
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
MONTH = {"lastDays": 30}
PAGE = """query($filter: UserFilter, $first: Int, $after: String) {
  users(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { userId } } } }"""
COUNTED = """query($filter: UserFilter, $first: Int) {
  users(filter: $filter, first: $first) { totalCount edges { node { userId } } } }"""
DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id } errors { code message } } }"""
CREATE_SEGMENT = """mutation($input: SegmentInput!) {
  createSegment(input: $input) { segment { id } errors { code message } } }"""


class Loaded:
    def __init__(self, api: Api, server: RunningServer, users: list[PUser]):
        self.api = api
        self.server = server
        self.users = users
        self.definition_id = 0  # "Clicked Buy"
        self.segment_id = 0  # paid at least twice, saved


@pytest.fixture(scope="module")
async def loaded(module_server: RunningServer) -> AsyncIterator[Loaded]:
    users = population.build(seed=31, count=240, now=NOW)
    async with Api(module_server.url) as api:
        await population.load(api, users)
        found = Loaded(api, module_server, users)
        buy = {"type": "click", "targetText": {"op": "EQUALS", "value": "Buy"}}
        defined = await api.gql(DEFINE, input={"name": "Clicked Buy", "criteria": [buy]})
        assert defined["defineEvent"]["errors"] == []
        found.definition_id = number(defined["defineEvent"]["definition"]["id"])
        paid = {"events": [{"event": {"type": "Invoice Paid"}, "atLeast": 2}], "seen": MONTH}
        saved = await api.gql(CREATE_SEGMENT, input={"name": "Paid twice", "filter": paid})
        assert saved["createSegment"]["errors"] == []
        found.segment_id = number(saved["createSegment"]["segment"]["id"])
        yield found


def number(global_id: str) -> int:
    decoded = ids.decode(global_id)
    assert decoded is not None
    return decoded[1][0]


def delivered(user: PUser) -> list[Any]:
    """The user's events as `population.load` sends them: a server event sent under the
    anonymous id before the merge is sent again under the identity."""
    again = [
        e
        for e in user.events[: user.anonymous_events]
        if e.source == "SERVER" and user.identity is not None and user.anonymous_id is not None
    ]
    return [*user.events, *again]


def did(user: PUser, kind: str, where: Any = None, days: float | None = None) -> int:
    """How many `kind` events the user did (matching `where`, in the last `days`)."""
    low = NOW - timedelta(days=days) if days is not None else None
    return sum(
        1
        for e in delivered(user)
        if e.type == kind and (where is None or where(e)) and (low is None or e.time >= low)
    )


def prop(name: str, op: str, value: Any = None) -> Callable[[Any], bool]:
    """An event property condition in Python (the operators of SPEC §5)."""
    return lambda e: holds(e.properties, name, op, value)


def did_at_least(kind: str, where: Callable[[Any], bool], n: int) -> Callable[[PUser], bool]:
    return lambda u: did(u, kind, where) >= n


def event(
    kind: str, *where: tuple[str, str, Any], at_least: int = 1, did: bool = True, **extra: Any
) -> dict[str, Any]:
    conditions = [
        {"property": n, "op": o, **({"value": v} if v is not None else {})} for n, o, v in where
    ]
    return {"event": {"type": kind, "where": conditions}, "atLeast": at_least, "did": did, **extra}


WHERE_CASES: list[tuple[str, str, str, Any]] = [
    ("click", "target_text", "EQUALS", "Buy"),
    ("click", "target_text", "NOT_EQUALS", "Buy"),
    ("click", "target_text", "CONTAINS", "SIGN"),
    ("click", "target_text", "NOT_CONTAINS", "o"),
    ("click", "target_text", "STARTS_WITH", "Do"),
    ("click", "target_text", "ENDS_WITH", "up"),
    ("click", "target_text", "MATCHES", "*u*"),
    ("click", "target_text", "IN", ["Buy", "Docs"]),
    ("click", "target_text", "NOT_IN", ["Buy", "Docs"]),
    ("click", "target_text", "IS_SET", None),
    ("Invoice Paid", "amount", "IS_NOT_SET", None),
    ("Invoice Paid", "amount", "GREATER_THAN", 49),
    ("Invoice Paid", "amount", "GREATER_OR_EQUAL", 49),
    ("Invoice Paid", "amount", "LESS_THAN", 99),
    ("Invoice Paid", "amount", "LESS_OR_EQUAL", 9),
    ("Invoice Paid", "amount", "EQUALS", 499),
    ("Invoice Paid", "amount", "IN", [9, 499]),
    ("Email Opened", "campaign", "EQUALS", "launch"),
]
CASES: list[tuple[str, dict[str, Any], Callable[[PUser], bool]]] = [
    *(
        (
            f"{kind} {name} {op} {value} ×{n}",
            {"seen": MONTH, "events": [event(kind, (name, op, value), at_least=n)]},
            did_at_least(kind, prop(name, op, value), n),
        )
        for kind, name, op, value in WHERE_CASES
        for n in (1, 2)
    ),
    (
        "clicked 3 times",
        {"seen": MONTH, "events": [event("click", at_least=3)]},
        lambda u: did(u, "click") >= 3,
    ),
    (
        "never clicked Buy",
        {"seen": MONTH, "events": [event("click", ("target_text", "EQUALS", "Buy"), did=False)]},
        lambda u: did(u, "click", prop("target_text", "EQUALS", "Buy")) == 0,
    ),
    (
        "clicked fewer than 2 times",
        {"seen": MONTH, "events": [event("click", at_least=2, did=False)]},
        lambda u: did(u, "click") < 2,
    ),
    (
        "a type nobody sends",
        {"seen": MONTH, "events": [event("never sent")]},
        lambda u: False,
    ),
    (
        "clicked twice in the last 3 days",
        {"seen": MONTH, "events": [event("click", at_least=2, time={"lastDays": 3})]},
        lambda u: did(u, "click", days=3) >= 2,
    ),
    (
        "pageview in the seen range of 2 days",
        {"seen": {"lastDays": 2}, "events": [event("pageview")]},
        lambda u: did(u, "pageview", days=2) >= 1,
    ),
    (
        "two event conditions",
        {
            "seen": MONTH,
            "events": [event("pageview", at_least=2), event("Email Opened", did=False)],
        },
        lambda u: did(u, "pageview") >= 2 and did(u, "Email Opened") == 0,
    ),
    (
        "anyOf of event conditions, with a property",
        {
            "seen": MONTH,
            "anyOf": [
                {"events": [event("Invoice Paid", ("amount", "GREATER_THAN", 90))]},
                {
                    "properties": [{"property": "plan", "op": "EQUALS", "value": "pro"}],
                    "events": [event("click", ("target_text", "EQUALS", "Docs"), at_least=2)],
                },
            ],
        },
        lambda u: (
            did(u, "Invoice Paid", prop("amount", "GREATER_THAN", 90)) >= 1
            or (
                holds(u.all_properties(), "plan", "EQUALS", "pro")
                and did(u, "click", prop("target_text", "EQUALS", "Docs")) >= 2
            )
        ),
    ),
]


def compiler(loaded: Loaded, environment_id: int) -> Compiler:
    return Compiler(
        environment_id,
        loaded.server.db.dialect,
        to_micros(NOW),
        definition_condition=definitions.matched_by,
    )


async def both_plans(loaded: Loaded, document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The users the set-wise and the per-user plans select for a filter document."""
    # Its own connection, without the server's read statement timeout: the per-user plan over
    # every user (no LIMIT, as no page reads it) may take longer than a page's query may.
    db = Database(loaded.server.db.url)
    try:
        return await _both_plans(db, loaded, document)
    finally:
        await db.dispose()


async def _both_plans(
    db: Database, loaded: Loaded, document: dict[str, Any]
) -> tuple[set[str], set[str]]:
    environment_id = (await environments.ensure(db)).id
    wanted = segments.from_document(document).checked()
    compiled = compiler(loaded, environment_id)
    found: list[set[str]] = []
    async with db.read() as conn:
        compiled.segments = await segments.resolve_filters(
            conn, environment_id=environment_id, user_filter=wanted
        )
        for per_user in (False, True):
            rows = await conn.execute(
                select(U.c.user_id).where(
                    U.c.environment_id == environment_id,
                    *compiled.users(wanted, per_user=per_user),
                )
            )
            found.append({str(user_id) for (user_id,) in rows})
    return found[0], found[1]


def expected(loaded: Loaded, holds_for: Callable[[PUser], bool]) -> set[str]:
    return {str(u.user_id) for u in loaded.users if holds_for(u)}


@pytest.mark.parametrize(("label", "document", "holds_for"), CASES, ids=[c[0] for c in CASES])
async def test_both_plans_select_the_same_users(
    loaded: Loaded, label: str, document: dict[str, Any], holds_for: Callable[[PUser], bool]
) -> None:
    set_wise, per_user = await both_plans(loaded, document)
    assert per_user == set_wise
    assert set_wise == expected(loaded, holds_for)


async def test_both_plans_for_definitions_and_segments(loaded: Loaded) -> None:
    def clicked_buy(u: PUser) -> int:
        return did(u, "click", prop("target_text", "EQUALS", "Buy"))

    by_definition = {
        "seen": MONTH,
        "events": [{"event": {"definitionId": loaded.definition_id}, "atLeast": 2}],
    }
    set_wise, per_user = await both_plans(loaded, by_definition)
    assert per_user == set_wise == expected(loaded, lambda u: clicked_buy(u) >= 2)
    in_segment = {"segmentId": loaded.segment_id, "events": [event("click", did=False)]}
    set_wise, per_user = await both_plans(loaded, in_segment)
    week = NOW - timedelta(days=7)
    assert (
        per_user
        == set_wise
        == expected(
            loaded,
            lambda u: (
                did(u, "Invoice Paid") >= 2 and did(u, "click", days=7) == 0 and u.last_seen >= week
            ),
        )
    )


async def walk(api: Api, filter: dict[str, Any], first: int) -> list[str]:
    listed: list[str] = []
    after = None
    while True:
        data = (await api.gql(PAGE, filter=filter, first=first, after=after))["users"]
        listed += [e["node"]["userId"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            return listed
        after = data["pageInfo"]["endCursor"]


LONG_AGO = NOW - timedelta(days=10)
WALKED = [
    # Most users click: pages come from the probe window.
    ("clicked", event("click"), lambda u: did(u, "click") >= 1),
    # Only users at the end of the list: the windows of small pages hold none of them, the
    # set-wise plan answers.
    (
        "viewed a page 10 days ago",
        event("pageview", time={"to": LONG_AGO.isoformat()}),
        lambda u: any(e.type == "pageview" and e.time <= LONG_AGO for e in delivered(u)),
    ),
    (
        "paid 499 twice",
        event("Invoice Paid", ("amount", "EQUALS", 499), at_least=2),
        lambda u: did(u, "Invoice Paid", prop("amount", "EQUALS", 499)) >= 2,
    ),
    (
        "clicked Buy",
        event("click", ("target_text", "EQUALS", "Buy")),
        lambda u: did(u, "click", prop("target_text", "EQUALS", "Buy")) >= 1,
    ),
]


@pytest.mark.parametrize("first", [1, 4, 30])
@pytest.mark.parametrize(("label", "condition", "holds_for"), WALKED, ids=[c[0] for c in WALKED])
async def test_pages_walk_every_match_in_order(
    loaded: Loaded,
    first: int,
    label: str,
    condition: dict[str, Any],
    holds_for: Callable[[PUser], bool],
) -> None:
    listed = await walk(loaded.api, {"seen": MONTH, "events": [condition]}, first)
    matching = [u for u in loaded.users if holds_for(u)]
    order = sorted(matching, key=lambda u: (u.last_seen, u.user_id), reverse=True)
    assert listed == [str(u.user_id) for u in order]


async def statements(loaded: Loaded, query: str, **variables: Any) -> int:
    before = loaded.server.db.statement_count
    await loaded.api.gql(query, **variables)
    return loaded.server.db.statement_count - before


@pytest.mark.parametrize("condition", [event("click"), event("never sent")], ids=["dense", "none"])
async def test_statements_do_not_grow_with_the_page(
    loaded: Loaded, condition: dict[str, Any]
) -> None:
    filter = {"seen": MONTH, "events": [condition]}
    counts = [await statements(loaded, PAGE, filter=filter, first=n) for n in (5, 50)]
    assert counts[0] == counts[1] <= 3, counts


async def test_members_are_counted_only_when_asked(loaded: Loaded) -> None:
    filter = {"seen": MONTH, "events": [event("click", at_least=2)]}
    plain = await statements(loaded, PAGE, filter=filter, first=10)
    counted = await statements(loaded, COUNTED, filter=filter, first=10)
    assert counted == plain + 1
    data = (await loaded.api.gql(COUNTED, filter=filter, first=10))["users"]
    assert data["totalCount"] == len(expected(loaded, lambda u: did(u, "click") >= 2))


def test_a_filter_names_events_through_segments_and_any_of() -> None:
    saved = UserFilter(events=segments.from_document({"events": [event("click")]}).events)
    compiled = Compiler(1, "sqlite", 0, segments={7: saved})
    assert compiled.names_events(UserFilter(any_of=(UserFilter(segment_id=7),)))
    assert not compiled.names_events(UserFilter(any_of=(UserFilter(seen=None),)))


def visit(user: int, kind: str, minutes_ago: float) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {"event": kind, "userId": str(user), "source": "WEB", "timestamp": at.isoformat()}


async def test_filtered_pages_keep_their_order_while_events_arrive(api: Api) -> None:
    """Users active after the first page (probed one by one) are neither repeated nor lost."""
    clickers = list(range(1, 81))
    await api.track_batch(
        [visit(u, "click", 60 + 7 * u) for u in clickers]
        + [visit(u, "pageview", 30 + 7 * u) for u in range(81, 121)]
    )
    filter = {"events": [{"event": {"type": "click"}}]}
    listed: list[str] = []
    after = None
    step = 0
    while True:
        data = (await api.gql(PAGE, filter=filter, first=6, after=after))["users"]
        listed += [e["node"]["userId"] for e in data["edges"]]
        step += 1
        # Clickers already listed and not yet listed come back to the top.
        await api.track_batch([visit(u, "pageview", 1) for u in clickers[step::9]])
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(listed) == len(set(listed)), "a user appeared twice"
    assert set(listed) == {str(u) for u in clickers}
