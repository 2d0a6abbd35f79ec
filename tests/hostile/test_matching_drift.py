"""Issue 17 point 10 replayed on a production server: a defined event created before the events
arrive (matched live at ingestion) and the same definition created after them (backfilled)
select exactly the same events, the ones SPEC §5a names. Before, on PostgreSQL the backfill
lower-cased `İ` differently from Python and compared 2^53 + 1 through a float cast."""

from __future__ import annotations

from typing import Any

from tests.hostile.probing import Shop

EVENT = "Visited"
# One Heap sender (only the public app id) per value; each sends one event carrying it.
VALUES: dict[str, Any] = {
    "dotted-capital": "İSTANBUL",
    "dotted-lower": "i̇stanbul",  # i + U+0307, what Python's lower() makes of İ
    "plain-lower": "istanbul",
    "plain-capital": "ISTANBUL",
    "capital-in-text": "from İstanbul, with love",
    "number-992": 9007199254740992,
    "number-993": 9007199254740993,
    "text-992": "9007199254740992",
    "text-993": "9007199254740993",
}
DOTTED = {"dotted-capital", "dotted-lower", "capital-in-text"}
CONDITIONS: list[tuple[str, Any, set[str]]] = [
    ("CONTAINS", "i̇stanbul", DOTTED),
    ("CONTAINS", "İSTANBUL", DOTTED),
    ("CONTAINS", "istanbul", {"plain-lower", "plain-capital"}),
    ("NOT_CONTAINS", "i̇stanbul", set(VALUES) - DOTTED),
    ("EQUALS", 9007199254740992, {"number-992", "text-992"}),
    ("EQUALS", 9007199254740993, {"number-993", "text-993"}),
    ("EQUALS", "9007199254740992", {"number-992", "text-992"}),
    ("NOT_EQUALS", 9007199254740992, set(VALUES) - {"number-992", "text-992"}),
    ("IN", [9007199254740992], {"number-992", "text-992"}),
]
DEFINE = """mutation($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id } errors { code field message } } }"""
DONE = """query($id: ID!) { users(filter: {seen: {lastDays: 30},
  events: [{event: {definitionId: $id}}]}, first: 50) { edges { node { identity } } } }"""


def _identity(label: str) -> str:
    return f"{label}@drift.test"


async def _define(shop: Shop, name: str, op: str, value: Any) -> str:
    criterion = {"type": EVENT, "properties": [{"property": "city", "op": op, "value": value}]}
    made = await shop.data("admin", DEFINE, input={"name": name, "criteria": [criterion]})
    assert made["defineEvent"]["errors"] == [], made["defineEvent"]["errors"]
    return str(made["defineEvent"]["definition"]["id"])


async def _senders(shop: Shop, definition_id: str) -> set[str]:
    """Who did an event of the definition (one event per sender, so: which events)."""
    data = await shop.data("read", DONE, id=definition_id)
    return {edge["node"]["identity"].removesuffix("@drift.test") for edge in data["users"]["edges"]}


async def test_live_match_and_backfill_select_the_same_events(shop: Shop) -> None:
    live = {
        index: await _define(shop, f"live {index}", op, value)
        for index, (op, value, _) in enumerate(CONDITIONS)
    }
    for label, city in VALUES.items():
        event = {"identity": _identity(label), "event": EVENT, "properties": {"city": city}}
        sent = await shop.heap("track", {"events": [event]})
        assert sent.status_code == 200, sent.text
    wrong = []
    for index, (op, value, expected) in enumerate(CONDITIONS):
        backfilled = await _define(shop, f"backfill {index}", op, value)
        found = {
            "live": await _senders(shop, live[index]),
            "backfill": await _senders(shop, backfilled),
        }
        wrong += [(how, op, value, sorted(got)) for how, got in found.items() if got != expected]
    assert not wrong, wrong
