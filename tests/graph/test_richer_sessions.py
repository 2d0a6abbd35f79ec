"""Session entry/exit page, duration and page views, filters on them, previous/next session.

Expectations come from the events the test sends: each session is written out below as the
events it holds (sessions far apart, so their bounds are plain), and its expected values are
read off that list here, not by the product's code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command

from models.migrate import alembic_config
from tests.conftest import RunningServer, start_server
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
SITE = "https://shop.example"
PAGE_VIEWS = ("pageview", "screenview")
ALICE, BOB, CAROL = "1", "2", "3"  # user ids


@dataclass
class Sent:
    """One event of a planned session: minutes after the session's start."""

    kind: str
    minute: float
    page: str | None = None  # web: the URL path; mobile screenview: the screen name
    by_url: bool = True  # web: the page given as context.url (else as properties.path)


@dataclass
class Planned:
    label: str
    user: str
    source: str  # WEB / IOS / SERVER
    start_minutes_ago: float
    events: list[Sent]

    def items(self) -> list[dict[str, Any]]:
        """The TrackInput items of the session's events."""
        items = []
        for index, sent in enumerate(self.events):
            at = NOW - timedelta(minutes=self.start_minutes_ago) + timedelta(minutes=sent.minute)
            item: dict[str, Any] = {
                "event": sent.kind,
                "userId": self.user,
                "source": self.source,
                "timestamp": at.isoformat(),
                "properties": {"s": self.label, "n": index},
            }
            if sent.page is not None and self.source == "WEB":
                if sent.by_url:
                    item["context"] = {"url": f"{SITE}{sent.page}?ref=x"}
                else:
                    item["properties"]["path"] = sent.page
            elif sent.page is not None:
                item["properties"]["name"] = sent.page
            items.append(item)
        return items

    # Expected values, read off the planned events.
    def page_views(self) -> list[Sent]:
        if self.source == "SERVER":
            return []
        return [e for e in self.events if e.kind in PAGE_VIEWS and e.page is not None]

    def with_pages(self) -> list[Sent]:
        if self.source == "SERVER":
            return []
        return [e for e in self.events if e.page is not None]

    @property
    def entry(self) -> str | None:
        views = sorted(self.page_views(), key=lambda e: e.minute)
        others = sorted(self.with_pages(), key=lambda e: e.minute)
        return views[0].page if views else (others[0].page if others else None)

    @property
    def exit(self) -> str | None:
        views = sorted(self.page_views(), key=lambda e: e.minute)
        others = sorted(self.with_pages(), key=lambda e: e.minute)
        return views[-1].page if views else (others[-1].page if others else None)

    @property
    def duration(self) -> int:
        minutes = [e.minute for e in self.events]
        return int((max(minutes) - min(minutes)) * 60)

    @property
    def pageviews(self) -> int:
        if self.source == "SERVER":
            return 0
        return sum(e.kind in PAGE_VIEWS for e in self.events)

    @property
    def start(self) -> float:
        return -self.start_minutes_ago


PLAN = [
    Planned(
        "a1",
        ALICE,
        "WEB",
        3000,
        [
            Sent("pageview", 0, "/pricing"),
            Sent("click", 1, "/pricing"),
            Sent("pageview", 5, "/docs", by_url=False),
            Sent("pageview", 12, "/signup"),
        ],
    ),
    Planned(
        "a2",
        ALICE,
        "WEB",
        2000,
        [Sent("click", 0, "/home"), Sent("pageview", 1, "/pricing"), Sent("click", 3, "/pricing")],
    ),
    Planned("a3", ALICE, "SERVER", 1500, [Sent("Invoice Paid", 0), Sent("Email Sent", 2)]),
    Planned(
        "a4",
        ALICE,
        "IOS",
        1000,
        [Sent("screenview", 0, "Home"), Sent("touch", 1), Sent("screenview", 4, "Cart")],
    ),
    Planned(
        "a5",
        ALICE,
        "WEB",
        500,
        [Sent("pageview", 0, "/pricing"), Sent("pageview", 15, "/blog/launch")],
    ),
    Planned("a6", ALICE, "WEB", 200, [Sent("click", 0, "/app/a"), Sent("click", 2, "/app/b")]),
    Planned("b1", BOB, "WEB", 400, [Sent("pageview", 0, "/pricing"), Sent("click", 2, "/x")]),
    Planned(
        "b2",
        BOB,
        "WEB",
        100,
        [Sent("pageview", 0, "/features"), Sent("pageview", 20, "/pricing")],
    ),
]
BY_LABEL = {p.label: p for p in PLAN}

SESSIONS = """
query($filter: SessionFilter) {
  sessions(filter: $filter, first: 100) {
    edges { node { entryPage exitPage durationSeconds pageviewCount
      events(first: 1) { edges { node { properties } } } } }
  }
}"""


def label(node: dict[str, Any]) -> str:
    return node["events"]["edges"][0]["node"]["properties"]["s"]


@pytest.fixture
async def shop(api: Api) -> Api:
    items = [item for planned in PLAN for item in planned.items()]
    assert (await api.track_batch(items))["errors"] == []
    return api


async def listed(api: Api, **conditions: Any) -> set[str]:
    data = await api.gql(SESSIONS, filter={"time": {"lastDays": 7}, **conditions})
    return {label(e["node"]) for e in data["sessions"]["edges"]}


async def test_each_session_shows_its_entry_and_exit_page_duration_and_page_views(
    shop: Api,
) -> None:
    data = await shop.gql(SESSIONS, filter={"time": {"lastDays": 7}, "includeServerOnly": True})
    shown = {label(e["node"]): e["node"] for e in data["sessions"]["edges"]}
    assert set(shown) == set(BY_LABEL)
    for name, planned in BY_LABEL.items():
        got = shown[name]
        expected = {
            "entryPage": planned.entry,
            "exitPage": planned.exit,
            "durationSeconds": planned.duration,
            "pageviewCount": planned.pageviews,
        }
        assert {k: got[k] for k in expected} == expected, name
    # The cases the plan was written to cover.
    assert shown["a2"]["entryPage"] == "/pricing"  # the first pageview, not the first click
    assert shown["a3"]["entryPage"] is None and shown["a3"]["pageviewCount"] == 0
    assert shown["a4"]["entryPage"] == "Home" and shown["a4"]["exitPage"] == "Cart"
    assert shown["a6"]["entryPage"] == "/app/a" and shown["a6"]["pageviewCount"] == 0


def expected(test: Any) -> set[str]:
    return {name for name, planned in BY_LABEL.items() if test(planned)}


PAGE_CASES = [
    ({"op": "EQUALS", "value": "/pricing"}, lambda page: page == "/pricing"),
    ({"op": "CONTAINS", "value": "PRIC"}, lambda page: page is not None and "pric" in page.lower()),
    ({"op": "STARTS_WITH", "value": "/app"}, lambda page: (page or "").startswith("/app")),
    ({"op": "ENDS_WITH", "value": "launch"}, lambda page: (page or "").endswith("launch")),
    (
        {"op": "MATCHES", "value": "/*/*"},
        lambda page: page is not None and page.count("/") >= 2 and page.startswith("/"),
    ),
    ({"op": "NOT_EQUALS", "value": "/pricing"}, lambda page: page != "/pricing"),
    ({"op": "IS_SET"}, lambda page: page is not None),
    ({"op": "IS_NOT_SET"}, lambda page: page is None),
]


@pytest.mark.parametrize(("match", "test"), PAGE_CASES, ids=[c[0]["op"] for c in PAGE_CASES])
async def test_page_filters(shop: Api, match: dict[str, Any], test: Any) -> None:
    assert await listed(shop, entryPage=match) == expected(lambda p: test(p.entry))
    assert await listed(shop, exitPage=match) == expected(lambda p: test(p.exit))


@pytest.mark.parametrize(
    ("bounds", "low", "high"),
    [
        ({"atLeast": 600}, 600, None),
        ({"atMost": 180}, None, 180),
        ({"atLeast": 120, "atMost": 720}, 120, 720),
    ],
)
async def test_duration_and_page_view_filters(
    shop: Api, bounds: dict[str, int], low: int | None, high: int | None
) -> None:
    def within(value: int, scale: int = 1) -> bool:
        return (low is None or value >= low // scale) and (high is None or value <= high // scale)

    assert await listed(shop, duration=bounds) == expected(lambda p: within(p.duration))
    counts = {k: v // 120 for k, v in bounds.items()}  # 600 s -> 5 page views, ...
    assert await listed(shop, pageviews=counts) == expected(lambda p: within(p.pageviews, 120))


async def test_started_on_pricing_and_lasted_at_least_ten_minutes(shop: Api) -> None:
    found = await listed(
        shop, entryPage={"op": "EQUALS", "value": "/pricing"}, duration={"atLeast": 600}
    )
    assert found == expected(lambda p: p.entry == "/pricing" and p.duration >= 600)
    assert found == {"a1", "a5"}
    found = await listed(
        shop,
        entryPage={"op": "EQUALS", "value": "/pricing"},
        exitPage={"op": "STARTS_WITH", "value": "/blog"},
        pageviews={"atLeast": 2, "atMost": 2},
    )
    assert found == {"a5"}


async def test_a_users_sessions_filter_on_the_same_conditions(shop: Api) -> None:
    query = """query($filter: UserSessionFilter) { user(userId: "1") {
      sessions(filter: $filter, first: 50) { totalCount edges { node {
        events(first: 1) { edges { node { properties } } } } } } } }"""
    cases = [
        ({"entryPage": {"op": "EQUALS", "value": "/pricing"}}, lambda p: p.entry == "/pricing"),
        ({"duration": {"atMost": 0}}, lambda p: p.duration == 0),
        ({"pageviews": {"atMost": 0}}, lambda p: p.pageviews == 0),
        (
            {"exitPage": {"op": "IS_SET"}, "duration": {"atLeast": 240}},
            lambda p: p.exit is not None and p.duration >= 240,
        ),
    ]
    for narrowing, test in cases:
        data = (await shop.gql(query, filter=narrowing))["user"]["sessions"]
        found = {label(e["node"]) for e in data["edges"]}
        want = {n for n, p in BY_LABEL.items() if p.user == ALICE and test(p)}
        assert found == want, narrowing
        assert data["totalCount"] == len(want)


async def test_bad_ranges_and_operators_are_refused_naming_the_field(shop: Api) -> None:
    for conditions, field in [
        ({"duration": {"atLeast": -1}}, "filter.duration.atLeast"),
        ({"pageviews": {"atLeast": 5, "atMost": 2}}, "filter.pageviews.atLeast"),
        ({"entryPage": {"op": "GREATER_THAN", "value": "3"}}, "filter.entryPage.op"),
        ({"exitPage": {"op": "EQUALS"}}, "filter.exitPage.value"),
    ]:
        body = await shop.raw(SESSIONS, filter=conditions)
        assert body["errors"][0]["extensions"]["field"] == field, body


NEIGHBOURS = """query($id: ID!) { node(id: $id) { ... on Session {
  events(first: 1) { edges { node { properties } } }
  previousSession { id } nextSession { id } } } }"""


async def test_previous_and_next_walk_a_users_sessions_both_ways(shop: Api) -> None:
    for user in (ALICE, BOB):
        chronological = [p.label for p in sorted(PLAN, key=lambda p: p.start) if p.user == user]
        data = await shop.gql(
            """query($u: String) { user(userId: $u) { sessions(first: 50) { edges { node {
              id events(first: 1) { edges { node { properties } } } } } } } }""",
            u=user,
        )
        ids = {label(e["node"]): e["node"]["id"] for e in data["user"]["sessions"]["edges"]}
        walked, at = [], ids[chronological[0]]
        while at is not None:
            node = (await shop.gql(NEIGHBOURS, id=at))["node"]
            walked.append(label(node))
            if len(walked) == 1:
                assert node["previousSession"] is None
            at = node["nextSession"] and node["nextSession"]["id"]
        assert walked == chronological
        walked, at = [], ids[chronological[-1]]
        while at is not None:
            node = (await shop.gql(NEIGHBOURS, id=at))["node"]
            walked.append(label(node))
            if len(walked) == 1:
                assert node["nextSession"] is None
            at = node["previousSession"] and node["previousSession"]["id"]
        assert walked == chronological[::-1]


async def test_neighbours_of_a_page_of_sessions_take_a_constant_number_of_statements(
    api: Api, server: RunningServer
) -> None:
    items = []
    for user in range(1, 41):
        for session in range(3):
            start = 60 * 24 * session + 60 * (user % 7) + 300
            planned = Planned(f"u{user}s{session}", str(1000 + user), "WEB", start, [])
            planned.events = [Sent("pageview", 0, f"/p{session}"), Sent("pageview", 2, "/q")]
            items += planned.items()
    assert (await api.track_batch(items))["errors"] == []
    query = """query($first: Int) { sessions(first: $first, filter: {time: {lastDays: 7}}) {
      edges { node { events(first: 1) { edges { node { properties } } }
        previousSession { entryPage events(first: 1) { edges { node { properties } } } }
        nextSession { exitPage events(first: 1) { edges { node { properties } } } } } } } }"""
    counts = {}
    for first in (5, 60):
        before = server.db.statement_count
        data = await api.gql(query, first=first)
        counts[first] = server.db.statement_count - before
        edges = data["sessions"]["edges"]
        assert len(edges) == first
        for edge in edges:
            name = label(edge["node"])
            user, session = name[1:].split("s")
            before_name = f"u{user}s{int(session) + 1}"  # older sessions start further back
            after_name = f"u{user}s{int(session) - 1}"
            previous, following = edge["node"]["previousSession"], edge["node"]["nextSession"]
            if session == "2":
                assert previous is None
            else:
                assert label(previous) == before_name
                assert previous["entryPage"] == f"/p{int(session) + 1}"
            if session == "0":
                assert following is None
            else:
                assert label(following) == after_name
                assert following["exitPage"] == "/q"
    assert counts[5] == counts[60], counts
    assert counts[5] <= 6, counts  # 4 measured: sessions, events pages, neighbours


async def test_late_events_move_the_entry_and_exit_page(api: Api) -> None:
    carol = Planned("c", CAROL, "WEB", 60, [Sent("pageview", 0, "/b"), Sent("pageview", 5, "/c")])
    assert (await api.track_batch(carol.items()))["errors"] == []
    query = """{ user(userId: "3") { sessions(first: 5) { edges { node {
      entryPage exitPage durationSeconds pageviewCount } } } } }"""

    async def shown() -> list[dict[str, Any]]:
        return [e["node"] for e in (await api.gql(query))["user"]["sessions"]["edges"]]

    assert await shown() == [
        {"entryPage": "/b", "exitPage": "/c", "durationSeconds": 300, "pageviewCount": 2}
    ]
    # An earlier pageview and a later one arrive late, and a click between them.
    late = Planned(
        "c",
        CAROL,
        "WEB",
        62,
        [Sent("pageview", 0, "/a"), Sent("click", 4, "/z"), Sent("pageview", 12, "/d")],
    )
    assert (await api.track_batch(late.items()))["errors"] == []
    carol.events = [
        Sent("pageview", -2, "/a"),
        Sent("pageview", 0, "/b"),
        Sent("click", 2, "/z"),
        Sent("pageview", 5, "/c"),
        Sent("pageview", 10, "/d"),
    ]
    assert await shown() == [
        {
            "entryPage": carol.entry,
            "exitPage": carol.exit,
            "durationSeconds": carol.duration,
            "pageviewCount": carol.pageviews,
        }
    ]
    assert (carol.entry, carol.exit, carol.duration, carol.pageviews) == ("/a", "/d", 720, 4)


async def test_the_migration_backfills_what_the_sessionizer_stores(
    shop: Api, database_url: str
) -> None:
    everything = {"time": {"lastDays": 7}, "includeServerOnly": True}
    before = await shop.gql(SESSIONS, filter=everything)
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0005")
    await asyncio.to_thread(command.upgrade, config, "head")
    running, server, task = await start_server(database_url)  # no statement cached before
    try:
        async with Api(running.url) as fresh:
            after = await fresh.gql(SESSIONS, filter=everything)
    finally:
        server.should_exit = True
        await task
    assert after == before
    assert len(after["sessions"]["edges"]) == len(PLAN)


async def test_a_merge_keeps_the_pages_of_the_merged_users_sessions(api: Api) -> None:
    identify = """mutation($u: String!, $i: String!) { identify(input: {userId: $u,
      identity: $i}) { merged errors { code } } }"""
    known = Planned("k", "41", "WEB", 120, [Sent("pageview", 0, "/known"), Sent("click", 1, "/k")])
    # The same person browsed anonymously on another device: one session joins the known
    # user's (an earlier pageview), one stays on its own.
    joining = Planned("j", "42", "WEB", 125, [Sent("pageview", 0, "/ad"), Sent("click", 2, "/x")])
    alone = Planned("a", "42", "WEB", 400, [Sent("screenview", 0, None), Sent("pageview", 3, "/")])
    items = [*known.items(), *joining.items(), *alone.items()]
    assert (await api.track_batch(items))["errors"] == []
    await api.gql(identify, u="41", i="erin")
    assert (await api.gql(identify, u="42", i="erin"))["identify"]["merged"] is True
    union = Planned(
        "u",
        "41",
        "WEB",
        125,
        [*joining.events, *(Sent(e.kind, e.minute + 5, e.page) for e in known.events)],
    )
    data = await api.gql("""{ user(userId: "41") { sessions(first: 5) { edges { node {
      entryPage exitPage durationSeconds pageviewCount } } } } }""")
    shown = [e["node"] for e in data["user"]["sessions"]["edges"]]
    assert shown == [
        {
            "entryPage": p.entry,
            "exitPage": p.exit,
            "durationSeconds": p.duration,
            "pageviewCount": p.pageviews,
        }
        for p in (union, alone)
    ]
    assert (union.entry, union.exit, alone.entry) == ("/ad", "/known", "/")
