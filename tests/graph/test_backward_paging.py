"""Relay-complete connections: `last`/`before` read the same lists `first`/`after` do, in the
same order, with Relay's pageInfo at every step (users, the Sessions page, a user's sessions,
a session's events); nested backward pages batch their SQL like forward ones."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.query_limits import listed_nodes
from graph.schema import schema
from tests.conftest import RunningServer
from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
PAGE = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
ARGS = "first: $first, after: $after, last: $last, before: $before"
VARS = "$first: Int, $after: String, $last: Int, $before: String"
USERS = f"""query({VARS}, $filter: UserFilter) {{
  users(filter: $filter, {ARGS}) {{ {PAGE} edges {{ cursor node {{ key: userId }} }} }} }}"""
SESSIONS_PAGE = f"""query({VARS}) {{
  sessions({ARGS}) {{ {PAGE} edges {{ cursor node {{ key: id }} }} }} }}"""
USER_SESSIONS = f"""query({VARS}) {{ user(userId: "900") {{
  sessions({ARGS}) {{ {PAGE} edges {{ cursor node {{ key: id }} }} }} }} }}"""
# The walker's oldest session (the last of its newest-first list) holds 23 events, with ties.
SESSION_EVENTS = f"""query({VARS}) {{ user(userId: "900") {{ sessions(last: 1) {{ edges {{ node {{
  events({ARGS}) {{ {PAGE} edges {{ cursor node {{ key: id }} }} }} }} }} }} }} }}"""
WALKER_SESSIONS = 7
OLDEST_SESSION_EVENTS = 23
SIGNED_UP = {"events": [{"event": {"type": "signup"}}]}


def event(user: int, at: datetime, kind: str = "pageview") -> dict[str, Any]:
    return {"event": kind, "userId": str(user), "source": "WEB", "timestamp": at.isoformat()}


def population() -> list[dict[str, Any]]:
    """Users 1..53, two sessions of three events each, last seen in groups of three at the
    same instant (ties broken by userId); every fourth signed up. User 900 has seven
    sessions, the oldest of 23 events seen in pairs at the same instant."""
    events = []
    for user in range(1, 54):
        latest = NOW - timedelta(minutes=7 * (user // 3) + 10)
        for session in range(2):
            start = latest - timedelta(hours=3 * session, minutes=2)
            kinds = ["signup" if user % 4 == 0 and session == 1 else "pageview", "click", "click"]
            events += [event(user, start + timedelta(minutes=i), k) for i, k in enumerate(kinds)]
    first = NOW - timedelta(days=2)
    events += [event(900, first + timedelta(seconds=i // 2)) for i in range(OLDEST_SESSION_EVENTS)]
    for session in range(1, WALKER_SESSIONS):
        start = first + timedelta(hours=2 * session)
        events += [event(900, start + timedelta(minutes=i)) for i in range(2)]
    return events


@pytest.fixture(scope="module")
async def loaded(module_server: RunningServer) -> AsyncIterator[Api]:
    async with Api(module_server.url) as api:
        events = population()
        for start in range(0, len(events), 500):
            assert (await api.track_batch(events[start : start + 500]))["errors"] == []
        yield api


@dataclass(frozen=True)
class Listing:
    """A connection to walk: its query, where the connection sits in the answer, variables."""

    name: str
    query: str
    at: Callable[[dict[str, Any]], dict[str, Any]]
    variables: tuple[tuple[str, Any], ...] = ()

    async def page(self, api: Api, **arguments: Any) -> dict[str, Any]:
        return self.at(await api.gql(self.query, **dict(self.variables), **arguments))


LISTINGS = [
    Listing("users", USERS, lambda d: d["users"]),
    Listing("users who signed up", USERS, lambda d: d["users"], (("filter", SIGNED_UP),)),
    Listing("sessions page", SESSIONS_PAGE, lambda d: d["sessions"]),
    Listing("a user's sessions", USER_SESSIONS, lambda d: d["user"]["sessions"]),
    Listing(
        "a session's events",
        SESSION_EVENTS,
        lambda d: d["user"]["sessions"]["edges"][0]["node"]["events"],
    ),
]


def keys(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["key"] for edge in connection["edges"]]


def check_info(connection: dict[str, Any], *, previous: bool, following: bool) -> None:
    """Relay's pageInfo: the flags expected, cursors of the first and last edge."""
    info, edges = connection["pageInfo"], connection["edges"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (previous, following), info
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)


async def whole(api: Api, listing: Listing) -> list[str]:
    """The list in pages as large as allowed: what every walk must yield."""
    found: list[str] = []
    after = None
    while True:
        connection = await listing.page(api, first=100, after=after)
        found += keys(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return found
        after = connection["pageInfo"]["endCursor"]


async def walk_forward(api: Api, listing: Listing, size: int) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        pages.append(await listing.page(api, first=size, after=after))
        info = pages[-1]["pageInfo"]
        check_info(pages[-1], previous=after is not None, following=info["hasNextPage"])
        if not info["hasNextPage"]:
            return pages
        assert len(pages[-1]["edges"]) == size
        after = info["endCursor"]


async def walk_backward(
    api: Api, listing: Listing, size: int, before: str | None = None
) -> list[dict[str, Any]]:
    """Pages from `before` (else the end) back to the start, in list order."""
    pages = []
    while True:
        # `first: null` as Relay and Apollo send it; `first` left out is the other test.
        page = await listing.page(api, first=None, last=size, before=before)
        info = page["pageInfo"]
        check_info(page, previous=info["hasPreviousPage"], following=before is not None)
        pages.insert(0, page)
        if not info["hasPreviousPage"]:
            return pages
        assert len(page["edges"]) == size
        before = info["startCursor"]


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda listing: listing.name)
@pytest.mark.parametrize("size", [1, 3, 10])
async def test_forward_then_backward_yields_the_forward_walk(
    loaded: Api, listing: Listing, size: int
) -> None:
    everything = await whole(loaded, listing)
    assert len(everything) >= WALKER_SESSIONS
    forward = await walk_forward(loaded, listing, size)
    assert [key for page in forward for key in keys(page)] == everything
    # Back from the last page's start, then from the very end: the same items, same order.
    back = await walk_backward(loaded, listing, size, forward[-1]["pageInfo"]["startCursor"])
    assert [key for page in back for key in keys(page)] + keys(forward[-1]) == everything
    from_end = await walk_backward(loaded, listing, size)
    assert [key for page in from_end for key in keys(page)] == everything
    assert from_end[-1]["pageInfo"]["hasNextPage"] is False


async def test_the_orders_are_the_documented_ones(loaded: Api) -> None:
    users = await whole(loaded, LISTINGS[0])
    # Newest activity first; ties (same last-seen instant) by userId, highest first.
    by_recency = sorted(range(1, 54), key=lambda u: (7 * (u // 3), -u))
    assert users[: len(by_recency)] == [str(u) for u in by_recency]
    assert users[-1] == "900"
    signed_up = await whole(loaded, LISTINGS[1])
    assert signed_up == [u for u in users if u != "900" and int(u) % 4 == 0]
    assert len(await whole(loaded, LISTINGS[3])) == WALKER_SESSIONS
    assert len(await whole(loaded, LISTINGS[4])) == OLDEST_SESSION_EVENTS


@st.composite
def walks(draw: st.DrawFn) -> tuple[int, bool, list[tuple[bool, int]]]:
    """(listing, start from the end, moves): each move pages on (True) or back (False)."""
    listing = draw(st.integers(0, len(LISTINGS) - 1))
    moves = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 12)), max_size=8))
    return listing, draw(st.booleans()), moves


@given(walk=walks(), first_size=st.integers(1, 12))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_walk_shows_the_slices_of_the_list(
    loaded: Api, walk: tuple[int, bool, list[tuple[bool, int]]], first_size: int
) -> None:
    index, from_end, moves = walk
    listing = LISTINGS[index]
    everything = await whole(loaded, listing)
    if from_end:
        page = await listing.page(loaded, last=first_size)
        low, high = max(0, len(everything) - first_size), len(everything)
        check_info(page, previous=low > 0, following=False)
    else:
        page = await listing.page(loaded, first=first_size)
        low, high = 0, min(first_size, len(everything))
        check_info(page, previous=False, following=high < len(everything))
    assert keys(page) == everything[low:high]
    for onward, size in moves:
        info = page["pageInfo"]
        if onward and info["hasNextPage"]:
            page = await listing.page(loaded, first=size, after=info["endCursor"])
            low, high = high, min(high + size, len(everything))
            check_info(page, previous=True, following=high < len(everything))
        elif not onward and info["hasPreviousPage"]:
            page = await listing.page(loaded, last=size, before=info["startCursor"])
            low, high = max(0, low - size), low
            check_info(page, previous=low > 0, following=True)
        assert keys(page) == everything[low:high]


NESTED = """query($first: Int, $sessions: Int, $events: Int) {
  users(first: $first) { edges { node { userId
    sessions(last: $sessions) { pageInfo { hasPreviousPage startCursor }
      edges { node { events(last: $events) { pageInfo { hasPreviousPage }
        edges { node { type } } } } } } } } } }"""


async def test_nested_backward_pages_cost_what_forward_ones_do(
    loaded: Api, module_server: RunningServer
) -> None:
    counts = {}
    for first in (5, 50):
        before = module_server.db.statement_count
        data = await loaded.gql(NESTED, first=first, sessions=1, events=2)
        counts[first] = module_server.db.statement_count - before
        users = [edge["node"] for edge in data["users"]["edges"]]
        assert len(users) == first
        for user in users:
            sessions = user["sessions"]
            assert sessions["pageInfo"]["hasPreviousPage"] is True  # two sessions each
            (older,) = [edge["node"] for edge in sessions["edges"]]
            # The older session's last two events, oldest first: pageview or signup, click.
            assert [e["node"]["type"] for e in older["events"]["edges"]] == ["click", "click"]
            assert older["events"]["pageInfo"]["hasPreviousPage"] is True
    forward = NESTED.replace("last: $sessions", "first: $sessions").replace(
        "last: $events", "first: $events"
    )
    before = module_server.db.statement_count
    await loaded.gql(forward, first=50, sessions=1, events=2)
    assert counts[5] == counts[50] == module_server.db.statement_count - before, counts


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ("first: 2, last: 2", "last"),
        ('last: 2, after: "x"', "after"),
        ('first: 2, before: "x"', "before"),
        ('before: "x"', "before"),
        ("last: 101", "last"),
        ("last: -1", "last"),
        ('last: 2, before: "not a cursor"', "before"),
    ],
)
async def test_mixed_or_bad_arguments_are_refused_naming_the_field(
    loaded: Api, arguments: str, field: str
) -> None:
    body = await loaded.raw(f"{{ users({arguments}) {{ edges {{ cursor }} }} }}")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert "Traceback" not in error["message"]


async def test_a_default_first_yields_to_last(loaded: Api) -> None:
    everything = await whole(loaded, LISTINGS[0])
    data = await loaded.gql("{ users(last: 2) { edges { node { userId } } } }")
    assert [e["node"]["userId"] for e in data["users"]["edges"]] == everything[-2:]
    nested = await loaded.gql(SESSION_EVENTS.replace(f"({VARS})", "").replace(ARGS, "last: 3"))
    assert len(LISTINGS[4].at(nested)["edges"]) == 3


def visit(user: int, minutes_ago: float) -> dict[str, Any]:
    return event(user, NOW - timedelta(minutes=minutes_ago))


class Arrivals:
    """Between pages, users already listed and not yet listed come back to the top, and
    newcomers appear."""

    def __init__(self, api: Api, original: list[int]):
        self.api, self.original = api, original
        self.rng = random.Random(7)
        self.newcomer = 2000

    async def arrive(self) -> None:
        movers = self.rng.sample(self.original, 8)
        newcomers = [self.newcomer, self.newcomer + 1]
        self.newcomer += 2
        visits = [visit(u, self.rng.uniform(0, 5)) for u in movers + newcomers]
        assert (await self.api.track_batch(visits))["errors"] == []

    async def walk_back(self, before: str | None) -> list[str]:
        """Every user from `before` (else the end) back to the start, 10 a page."""
        back: list[str] = []
        while True:
            await self.arrive()
            page = await LISTINGS[0].page(self.api, last=10, before=before)
            back = keys(page) + back
            if not page["pageInfo"]["hasPreviousPage"]:
                return back
            before = page["pageInfo"]["startCursor"]


async def test_walking_back_while_events_arrive_never_repeats_or_skips(api: Api) -> None:
    original = list(range(1, 91))
    rng = random.Random(5)
    await api.track_batch([visit(u, rng.uniform(60, 5000)) for u in original])
    arrivals = Arrivals(api, original)
    listed: list[str] = []
    after = None
    for _ in range(4):
        page = await LISTINGS[0].page(api, first=10, after=after)
        listed += keys(page)
        after = page["pageInfo"]["endCursor"]
        await arrivals.arrive()
    # Back from the fourth page's last user: the forward walk's users before it, in its
    # (snapshot) order.
    back = await arrivals.walk_back(after)
    assert back == listed[:-1], "a backward walk left the forward walk's order"
    # Back from the end of a new listing.
    everyone = await arrivals.walk_back(None)
    assert len(everyone) == len(set(everyone)), "a user appeared twice"
    assert {str(u) for u in original} <= set(everyone), "a user present from the start was skipped"


def test_last_counts_toward_the_listed_nodes_as_first_does() -> None:
    query = """query($users: Int) { users(first: null, last: $users) { edges { node {
      sessions(last: 3) { edges { node { events(first: 4) { edges { node { type } } } } } }
    } } } }"""
    document = parse(query)
    (operation,) = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    graphql_schema = schema._schema  # the graphql-core schema the server executes
    # users, then 3 sessions of each, then 4 events of each session.
    assert listed_nodes(graphql_schema, document, operation, {"users": 7}) == 7 + 21 + 84
    # Without `last`, `first` holds its default (50 users).
    assert listed_nodes(graphql_schema, document, operation, {}) == 50 + 150 + 600
