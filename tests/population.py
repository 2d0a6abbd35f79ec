"""A realistic, deterministic population of users for list and filter tests.

Users browse on the web (pageviews, clicks), on iOS and Android, and receive server-side
events; some are identified, some anonymous, some identified after browsing anonymously
on another device (a merge). The population knows, independently of the server, what
every user did, so tests compute expected answers in plain Python.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services import conditions
from tests.support import Api

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
BROWSERS = {CHROME_MAC: "Chrome 131", FIREFOX_WIN: "Firefox 132", SAFARI_IPHONE: "Mobile Safari 17"}
PAGES = ["/", "/pricing", "/docs", "/checkout", "/blog/launch"]
PLANS = ["free", "pro", "enterprise"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "ACME Labs", "Umbrella"]


@dataclass
class PEvent:
    type: str
    time: datetime
    source: str
    properties: dict[str, Any]
    user_agent: str | None = None
    url: str | None = None


@dataclass
class PUser:
    user_id: int
    identity: str | None
    properties: dict[str, Any]
    events: list[PEvent] = field(default_factory=list)
    anonymous_id: int | None = None  # browsed anonymously first, then merged by identify
    anonymous_events: int = 0  # how many of `events` were sent under anonymous_id
    user_agent: str = CHROME_MAC

    @property
    def last_seen(self) -> datetime:
        return max(e.time for e in self.events)

    @property
    def email(self) -> str | None:
        return self.properties.get("email")

    def all_properties(self) -> dict[str, Any]:
        """Properties as the server should expose them for filtering."""
        found = {k: v for k, v in self.properties.items() if k != "email"}
        found["userId"] = str(self.user_id)
        if self.identity is not None:
            found["identity"] = self.identity
        if self.email is not None:
            found["email"] = self.email
        web = [e for e in sorted(self.events, key=lambda e: e.time) if e.source != "SERVER"]
        if web and web[0].user_agent in BROWSERS:
            found["Initial Browser"] = BROWSERS[web[0].user_agent]
        return found


def build(seed: int = 7, count: int = 240, now: datetime | None = None) -> list[PUser]:
    """`count` users active over the last 12 days before `now`."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(microsecond=0)
    users: list[PUser] = []
    for index in range(count):
        identified = rng.random() < 0.6
        properties: dict[str, Any] = {}
        if rng.random() < 0.8:
            properties["plan"] = rng.choice(PLANS)
        if rng.random() < 0.7:
            properties["seats"] = rng.choice([1, 3, 10, 25, 120])
        if rng.random() < 0.3:
            properties["seats_text"] = rng.choice(["2", "9", "10", "100"])
        if rng.random() < 0.6:
            properties["company"] = rng.choice(COMPANIES)
        if rng.random() < 0.5:
            properties["beta"] = rng.random() < 0.5
        if identified and rng.random() < 0.7:
            properties["email"] = f"user{index}@{rng.choice(['example.com', 'corp.io'])}"
        user = PUser(
            user_id=100_000 + index,
            identity=f"user{index}@{'acme' if index % 3 else 'globex'}.test"
            if identified
            else None,
            properties=properties,
            user_agent=rng.choice(list(BROWSERS)),
        )
        _activity(rng, user, now)
        if identified and rng.random() < 0.2:
            user.anonymous_id = 900_000 + index
            user.anonymous_events = rng.randint(1, max(1, len(user.events) // 2))
        if identified and not any(
            e.source != "SERVER" for e in user.events[user.anonymous_events :]
        ):  # identify needs the user to exist under its own userId first
            at = min(user.events[-1].time + timedelta(seconds=30), now)
            user.events.append(
                PEvent("pageview", at, "WEB", {}, user.user_agent, "https://shop.example.com/")
            )
        users.append(user)
    return users


def _activity(rng: random.Random, user: PUser, now: datetime) -> None:
    start = now - timedelta(days=rng.uniform(0.1, 12))
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["WEB", "WEB", "WEB", "IOS", "ANDROID", "SERVER"])
        at = start
        for step in range(rng.randint(1, 6)):
            at += timedelta(seconds=rng.randint(5, 400))
            if at >= now:
                break
            if kind == "SERVER":
                name = rng.choice(["Invoice Paid", "Email Opened"])
                properties = (
                    {"amount": rng.choice([9, 49, 99, 499])}
                    if name == "Invoice Paid"
                    else {"campaign": rng.choice(["spring", "launch"])}
                )
                user.events.append(PEvent(name, at, "SERVER", properties))
                continue
            page = rng.choice(PAGES)
            name = "pageview" if step == 0 or rng.random() < 0.5 else "click"
            properties = (
                {"target_text": rng.choice(["Buy", "Sign up", "Docs"])} if name == "click" else {}
            )
            url = f"https://shop.example.com{page}"
            ua = user.user_agent if kind == "WEB" else None
            user.events.append(PEvent(name, at, kind, properties, ua, url))
        start = at + timedelta(hours=rng.uniform(1, 30))
        if start >= now:
            break
    if not user.events:
        user.events.append(
            PEvent(
                "pageview",
                now - timedelta(hours=1),
                "WEB",
                {},
                user.user_agent,
                "https://shop.example.com/",
            )
        )
    user.events.sort(key=lambda e: e.time)


def _track_input(user: PUser, event: PEvent, as_anonymous: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event": event.type,
        "source": event.source,
        "timestamp": event.time.isoformat(),
        "properties": event.properties,
    }
    if event.source == "SERVER" and user.identity is not None and not as_anonymous:
        item["identity"] = user.identity
    else:
        item["userId"] = str(user.anonymous_id if as_anonymous else user.user_id)
    if event.source != "SERVER":
        item["context"] = {"userAgent": event.user_agent, "url": event.url}
    return item


IDENTIFY = """mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) { merged errors { code } } }"""
PROPERTIES = """mutation($users: [UserPropertiesInput!]!) {
  addUserPropertiesBatch(users: $users) { accepted errors { code message } } }"""


async def load(api: Api, users: list[PUser]) -> None:
    """Send the population through the GraphQL API, including the merges."""
    items: list[dict[str, Any]] = []
    for user in users:
        for position, event in enumerate(user.events):
            as_anonymous = user.anonymous_id is not None and position < user.anonymous_events
            if event.source == "SERVER" and user.identity is not None and not as_anonymous:
                continue  # sent after identify, once the identity exists
            items.append(_track_input(user, event, as_anonymous))
    for start in range(0, len(items), 400):
        result = await api.track_batch(items[start : start + 400])
        assert result["errors"] == [], result["errors"]
    for user in users:
        if user.identity is None:
            continue
        done = await api.gql(IDENTIFY, userId=str(user.user_id), identity=user.identity)
        assert done["identify"]["errors"] == []
        if user.anonymous_id is not None:
            merged = await api.gql(IDENTIFY, userId=str(user.anonymous_id), identity=user.identity)
            assert merged["identify"]["merged"] is True
    later = [
        _track_input(u, e, False)
        for u in users
        if u.identity is not None
        for e in u.events
        if e.source == "SERVER"
    ]
    for start in range(0, len(later), 400):
        assert (await api.track_batch(later[start : start + 400]))["errors"] == []
    updates = [
        {"userId": str(u.user_id), "properties": u.properties} for u in users if u.properties
    ]
    for start in range(0, len(updates), 500):
        result = await api.gql(PROPERTIES, users=updates[start : start + 500])
        assert result["addUserPropertiesBatch"]["errors"] == []


# ------------------------------------------------------------------ expectations


def holds(properties: dict[str, Any], name: str, op: str, arg: Any = None) -> bool:
    """SPEC §5a through the one implementation (tests/services/test_conditions.py holds it
    to the spec's table and to the SQL of both databases)."""
    return conditions.holds(conditions.PropertyCondition(name, op, arg), properties)
