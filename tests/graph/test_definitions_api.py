"""Defined events and rage clicks through the GraphQL API (SPEC §3, §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Api

NOW = datetime.now(UTC).replace(microsecond=0)
BUY = "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|"
NAV = "@body;|@nav;|@a;.nav-link;[href=/pricing];|"
DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id name color eventCount criteria { type selector
    targetText { op value } path { op value } properties { property op value } } }
    errors { code field message } } }"""
UPDATE = """mutation($id: ID!, $input: DefineEventInput!) {
  updateEventDefinition(id: $id, input: $input) { definition { id eventCount }
    errors { code field } } }"""
DELETE = """mutation($id: ID!) { deleteEventDefinition(id: $id) { deletedId errors { code } } }"""
TIMELINE = """query($id: String) { user(userId: $id) { sessions(first: 50) { edges { node {
  hasRageClick mostFrequentEvents(limit: 3) { name count definition { name } }
  events(first: 500) { edges { node { id type name time defined color isRageClick
    definition { name } definitions { name } properties } } } } } } } }"""
USERS = """query($filter: UserFilter) { users(filter: $filter, first: 100) {
  totalCount edges { node { userId } } } }"""


def click(
    user: int,
    at: datetime,
    hierarchy: str,
    text: str = "Buy",
    path: str = "/checkout",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event": "click",
        "userId": str(user),
        "source": "WEB",
        "timestamp": at.isoformat(),
        "properties": {"hierarchy": hierarchy, "target_text": text, "path": path, **extra},
    }


async def define(api: Api, name: str, criteria: list[dict], **extra: Any) -> dict[str, Any]:
    result = await api.gql(DEFINE, input={"name": name, "criteria": criteria, **extra})
    assert result["defineEvent"]["errors"] == [], result
    return result["defineEvent"]["definition"]


def events_of(timeline: dict) -> list[dict]:
    return [
        e["node"]
        for s in timeline["user"]["sessions"]["edges"]
        for e in s["node"]["events"]["edges"]
    ]


async def test_definition_applies_to_stored_and_new_events(api: Api) -> None:
    start = NOW - timedelta(days=1)
    events = []
    for index in range(10_000):
        at = start + timedelta(seconds=7 * index)
        user = 1 + index % 50
        events.append(
            click(user, at, BUY if index % 4 == 0 else NAV, "Buy" if index % 4 == 0 else "Pricing")
        )
    for batch in range(0, len(events), 1000):
        assert (await api.track_batch(events[batch : batch + 1000]))["errors"] == []
    buy = await define(api, "Clicked Buy", [{"type": "click", "selector": "#checkout .buy"}])
    assert buy["eventCount"] == 2500 and buy["color"].startswith("#")
    buyers = await api.gql(USERS, filter={"events": [{"event": {"definitionId": buy["id"]}}]})
    assert {u["node"]["userId"] for u in buyers["users"]["edges"]} == {
        str(1 + i % 50) for i in range(0, 10_000, 4)
    }
    old = events_of(await api.gql(TIMELINE, id="1"))
    assert len(old) == 200
    for event in old:
        expected = "Clicked Buy" if event["properties"]["hierarchy"] == BUY else "click"
        assert event["name"] == expected
    # A new event is matched as it arrives.
    await api.track_batch([click(2, NOW - timedelta(minutes=1), BUY)])
    new = events_of(await api.gql(TIMELINE, id="2"))
    latest = max(new, key=lambda e: e["time"])
    assert latest["name"] == "Clicked Buy" and latest["defined"] is True
    assert latest["color"] == buy["color"]
    # Editing narrows it; deleting removes every match.
    edited = await api.gql(
        UPDATE,
        id=buy["id"],
        input={
            "name": "Clicked Buy",
            "criteria": [
                {
                    "type": "click",
                    "selector": "#checkout .buy",
                    "targetText": {"op": "EQUALS", "value": "Nope"},
                }
            ],
        },
    )
    assert edited["updateEventDefinition"]["definition"]["eventCount"] == 0
    assert {e["name"] for e in events_of(await api.gql(TIMELINE, id="1"))} == {"click"}
    assert all(e["defined"] is False for e in events_of(await api.gql(TIMELINE, id="1")))
    assert (await api.gql(DELETE, id=buy["id"]))["deleteEventDefinition"]["errors"] == []
    gone = await api.raw(USERS, filter={"events": [{"event": {"definitionId": buy["id"]}}]})
    assert gone["data"]["users"]["totalCount"] == 0
    assert (await api.gql("{ eventDefinitions { name } }"))["eventDefinitions"] == []


async def test_precedence_combo_and_from_event(api: Api) -> None:
    at = NOW - timedelta(hours=2)
    await api.track_batch(
        [
            click(7, at, BUY),
            click(7, at + timedelta(seconds=5), NAV, "Pricing", "/"),
            {
                "event": "pageview",
                "userId": "7",
                "source": "WEB",
                "timestamp": (at + timedelta(seconds=9)).isoformat(),
                "context": {"url": "https://shop.example.com/pricing"},
            },
        ]
    )
    any_click = await define(api, "Any click", [{"type": "click"}])
    buy = await define(
        api,
        "Buy button",
        [
            {
                "type": "click",
                "selector": "button.buy",
                "path": {"op": "EQUALS", "value": "/checkout"},
            }
        ],
    )
    combo = await define(
        api,
        "Shopping",
        [
            {"type": "click", "selector": ".nav-link"},
            {"type": "pageview", "path": {"op": "MATCHES", "value": "/pri*"}},
        ],
    )
    timeline = events_of(await api.gql(TIMELINE, id="7"))
    by_type = {(e["type"], e["properties"].get("target_text")): e for e in timeline}
    assert by_type[("click", "Buy")]["name"] == "Buy button"  # 2 conditions beat 0
    assert [d["name"] for d in by_type[("click", "Buy")]["definitions"]] == [
        "Buy button",
        "Any click",
    ]
    assert by_type[("click", "Pricing")]["name"] == "Shopping"  # tie of 1 vs 0? 1 wins
    assert by_type[("pageview", None)]["name"] == "Shopping"
    frequencies = (await api.gql(TIMELINE, id="7"))["user"]["sessions"]["edges"][0]["node"][
        "mostFrequentEvents"
    ]
    assert {f["name"]: (f["count"], (f["definition"] or {}).get("name")) for f in frequencies} == {
        "Shopping": (2, "Shopping"),
        "Buy button": (1, "Buy button"),
    }
    assert any_click["eventCount"] == 2 and combo["eventCount"] == 2
    from_event = await define(
        api, "From the buy click", [], fromEventId=by_type[("click", "Buy")]["id"]
    )
    criterion = from_event["criteria"][0]
    assert criterion["type"] == "click" and criterion["path"] == {
        "op": "EQUALS",
        "value": "/checkout",
    }
    assert criterion["targetText"] == {"op": "EQUALS", "value": "Buy"}
    assert "button" in criterion["selector"] and from_event["eventCount"] == 1
    assert buy["eventCount"] == 1


async def test_definition_refusals(api: Api) -> None:
    await define(api, "Signup", [{"type": "submit"}])
    taken = await api.gql(DEFINE, input={"name": "SIGNUP", "criteria": [{"type": "x"}]})
    assert [e["code"] for e in taken["defineEvent"]["errors"]] == ["NAME_TAKEN"]
    bad = (
        await api.gql(
            DEFINE, input={"name": "Bad", "criteria": [{"type": "click", "selector": "a:hover"}]}
        )
    )["defineEvent"]["errors"]
    assert bad[0]["code"] == "INVALID_SELECTOR" and "hover" in bad[0]["message"]
    assert bad[0]["field"] == "criteria[0].selector"
    unknown = (await api.gql(DELETE, id="RXZlbnREZWZpbml0aW9uOjk5OTk"))["deleteEventDefinition"]
    assert [e["code"] for e in unknown["errors"]] != []


async def test_rage_clicks_in_any_arrival_order(api: Api) -> None:
    at = NOW - timedelta(hours=1)
    burst = [click(9, at + timedelta(milliseconds=400 * i), BUY) for i in range(3)]
    slow = [click(9, at + timedelta(minutes=5, seconds=2 * i), NAV) for i in range(3)]
    await api.track_batch([burst[2], slow[0]])
    await api.track_batch([burst[0], slow[2], slow[1]])
    await api.track_batch([burst[1]])
    timeline = await api.gql(TIMELINE, id="9")
    flags = sorted(
        (e["properties"]["hierarchy"] == BUY, e["isRageClick"]) for e in events_of(timeline)
    )
    assert flags == [(False, False)] * 3 + [(True, True)] * 3
    assert timeline["user"]["sessions"]["edges"][0]["node"]["hasRageClick"] is True
