"""A deterministic, realistic demo population, loaded through the ingestion service.

Orchestrates services.ingest: `generate` yields batches of events, identify calls and user
properties for N people over D days ending now (same seed and `now_us`, same batches);
`load` sends them through `ingest.track`, `ingest.identify` and `ingest.add_user_properties`
exactly as the GraphQL, Heap and Segment APIs do.

The population: anonymous visitors and identified customers; customers who log in during
their first session (a client event carrying both ids) and some who browsed anonymously on
a second device first (merged by an explicit identify); web sessions of pageviews and
clicks with Heap element hierarchies, landing pages with UTM tags and referrers; iOS and
Android app sessions; server-side events inside client sessions (Order Completed) and
outside them (Invoice Paid, Email Opened); rage-click bursts. About 10 events per person.

Length: most of it is the demo population's data (paths, products, hierarchies, names),
read top to bottom; the code that sends it is short.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import exists, func, select

from models import Environment, Event, User
from models.db import Database
from services import ingest
from services.clock import DAY_US, MICROS, MINUTE_US, now_us, to_datetime
from services.ingest import TrackItem, UserPropertiesItem

SITE = "https://shopwise.example.com"
HOUR_US = 60 * MINUTE_US
CHUNK = 1000  # people generated (and their batches flushed) together
POWER_USER_EVERY = 997  # person 0, 997, ... has 25-40 sessions (the timeline benchmark)

# (user agent, weight): desktop Chrome/Firefox/Safari/Edge, iPhone, iPad, Android phones.
WEB_AGENTS = (
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        22,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        20,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", 8),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Safari/605.1.15",
        10,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        5,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        18,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        3,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
        9,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        5,
    ),
)
APPS = {
    "IOS": {"library": "ios", "appName": "Shopwise", "appVersion": "4.12.1"},
    "ANDROID": {"library": "android", "appName": "Shopwise", "appVersion": "4.12.0"},
}
SCREENS = ("Home", "Search", "Product", "Cart", "Checkout", "Orders", "Settings")
LOCATIONS = (
    {"country": "United States", "region": "California", "city": "San Francisco"},
    {"country": "United States", "region": "New York", "city": "New York"},
    {"country": "United States", "region": "Texas", "city": "Austin"},
    {"country": "United Kingdom", "region": "England", "city": "London"},
    {"country": "Germany", "region": "Berlin", "city": "Berlin"},
    {"country": "France", "region": "Île-de-France", "city": "Paris"},
    {"country": "India", "region": "Karnataka", "city": "Bengaluru"},
    {"country": "Brazil", "region": "São Paulo", "city": "São Paulo"},
    {"country": "Japan", "region": "Tokyo", "city": "Tokyo"},
    {"country": "Canada", "region": "Ontario", "city": "Toronto"},
)
# How people arrive: (query string, referrer, weight). Marketing channels follow from them.
ARRIVALS = (
    ("", None, 30),
    ("", "https://www.google.com/", 22),
    ("", "https://www.bing.com/", 3),
    (
        "utm_source=google&utm_medium=cpc&utm_campaign=winter_sale&utm_term=trail+shoes",
        "https://www.google.com/",
        10,
    ),
    ("utm_source=newsletter&utm_medium=email&utm_campaign=weekly_digest", None, 10),
    ("utm_source=twitter&utm_medium=social&utm_campaign=launch", "https://t.co/", 6),
    ("", "https://www.facebook.com/", 5),
    ("", "https://news.ycombinator.com/", 6),
    ("utm_source=partner&utm_medium=referral&utm_content=review", "https://gearblog.example/", 8),
)
FIRST_NAMES = ("ada", "grace", "alan", "linus", "margaret", "ken", "barbara", "dennis", "radia")
LAST_NAMES = ("lovelace", "hopper", "turing", "torvalds", "hamilton", "thompson", "liskov")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne")
PLANS = (("free", 0), ("starter", 19), ("pro", 49), ("business", 199))


@dataclass(frozen=True, slots=True)
class Element:
    """A clickable element of a page: its Heap hierarchy, text and link target."""

    hierarchy: str
    text: str
    href: str | None = None


def _link(section: str, text: str, href: str) -> Element:
    return Element(f"@html;|@body;|@{section};.nav;|@a;.nav-link;[href={href}];|", text, href)


NAV = (
    _link("header", "Pricing", "/pricing"),
    _link("header", "Shop", "/products"),
    _link("header", "Docs", "/docs/getting-started"),
    _link("footer", "Blog", "/blog/winter-sale"),
)
PAGES: dict[str, tuple[str, tuple[Element, ...]]] = {
    "/": ("Shopwise — Trail gear", NAV),
    "/pricing": (
        "Pricing — Shopwise",
        (
            Element("@html;|@body;|@div;#plans;.grid;|@button;.btn;.btn-primary;|", "Start trial"),
            Element("@html;|@body;|@div;#faq;|@details;|@summary;|", "Can I cancel?"),
        ),
    ),
    "/products": (
        "All products — Shopwise",
        (
            Element(
                "@html;|@body;|@main;|@div;.product-card;[data-sku=17];|@a;.title;|",
                "Trail Runner 2",
                "/products/trail-runner-2",
            ),
            Element(
                "@html;|@body;|@main;|@div;.product-card;[data-sku=42];|@a;.title;|",
                "Summit Jacket",
                "/products/summit-jacket",
            ),
            Element(
                "@html;|@body;|@aside;#filters;|@input;.filter;[type=checkbox];|", "Waterproof"
            ),
        ),
    ),
    "/products/trail-runner-2": (
        "Trail Runner 2 — Shopwise",
        (
            Element(
                "@html;|@body;|@div;#product;.panel;|@button;.btn;.add-to-cart;[data-sku=17];|",
                "Add to cart",
            ),
            Element("@html;|@body;|@div;#gallery;|@img;.thumb;|", ""),
        ),
    ),
    "/products/summit-jacket": (
        "Summit Jacket — Shopwise",
        (
            Element(
                "@html;|@body;|@div;#product;.panel;|@button;.btn;.add-to-cart;[data-sku=42];|",
                "Add to cart",
            ),
            Element("@html;|@body;|@div;#sizes;|@button;.size;|", "M"),
        ),
    ),
    "/cart": (
        "Your cart — Shopwise",
        (Element("@html;|@body;|@div;#cart;.drawer;|@button;.btn;.checkout;|", "Checkout"),),
    ),
    "/checkout": (
        "Checkout — Shopwise",
        (Element("@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|", "Buy now"),),
    ),
    "/docs/getting-started": (
        "Getting started — Shopwise Docs",
        (Element("@html;|@body;|@nav;#toc;|@a;|", "Installation", "/docs/install"),),
    ),
    "/blog/winter-sale": (
        "Winter sale — Shopwise Blog",
        (Element("@html;|@body;|@article;|@a;.cta;|", "Shop the sale", "/products"),),
    ),
    "/signup": (
        "Create your account — Shopwise",
        (
            Element(
                "@html;|@body;|@form;#signup;|@button;.btn;.btn-primary;[type=submit];|",
                "Create account",
            ),
        ),
    ),
}
NEXT_PAGES = {
    "/": ("/products", "/pricing", "/blog/winter-sale", "/signup"),
    "/pricing": ("/signup", "/products", "/"),
    "/products": ("/products/trail-runner-2", "/products/summit-jacket", "/cart"),
    "/products/trail-runner-2": ("/cart", "/products", "/products/summit-jacket"),
    "/products/summit-jacket": ("/cart", "/products"),
    "/cart": ("/checkout", "/products"),
    "/checkout": ("/", "/products"),
    "/docs/getting-started": ("/pricing", "/"),
    "/blog/winter-sale": ("/products", "/"),
    "/signup": ("/products", "/"),
}
LANDINGS = ("/", "/", "/products", "/pricing", "/blog/winter-sale", "/docs/getting-started")


@dataclass(slots=True)
class Person:
    """One human of the demo: a primary device, maybe an identity and a second device."""

    index: int
    user_id: int  # the SDK's userId on the primary device
    identity: str | None
    platform: str  # WEB, IOS or ANDROID
    user_agent: str | None
    location: dict[str, str]
    second_device: int | None = None  # an anonymous userId merged by identify later
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IdentifyCall:
    """`identify(userId, identity)`: identifies, or merges an anonymous user into the identity."""

    user_id: str
    identity: str


@dataclass(slots=True)
class DemoBatch:
    """One call of the ingestion service; `people` counts the people it completes."""

    kind: Literal["track", "identify", "properties"]
    events: list[TrackItem] = field(default_factory=list)
    identifies: list[IdentifyCall] = field(default_factory=list)
    properties: list[UserPropertiesItem] = field(default_factory=list)
    people: int = 0

    def __len__(self) -> int:
        return len(self.events) + len(self.identifies) + len(self.properties)


def person(*, seed: int, index: int) -> Person:
    """The `index`-th person of the population of `seed` (independent of N and batching)."""
    rng = random.Random(f"usertrail-demo:{seed}:{index}")
    user_id = rng.randrange(10**9, 2**53)
    identified = rng.random() < 0.55 or index % POWER_USER_EVERY == 0
    identity = None
    if identified:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        identity = f"{first}.{last}.{index}@{rng.choice(('gmail.com', 'acme.test', 'corp.io'))}"
    roll = rng.random()
    platform = "WEB" if roll < 0.7 else ("IOS" if roll < 0.85 else "ANDROID")
    agents, weights = zip(*WEB_AGENTS, strict=True)
    made = Person(
        index=index,
        user_id=user_id,
        identity=identity,
        platform=platform,
        user_agent=rng.choices(agents, weights)[0] if platform == "WEB" else None,
        location=rng.choice(LOCATIONS),
    )
    if identified and rng.random() < 0.2:
        made.second_device = rng.randrange(10**9, 2**53)
    if identified:
        plan, _ = rng.choice(PLANS)
        made.properties = {
            "email": identity,
            "plan": plan,
            "company": rng.choice(COMPANIES),
            "seats": rng.choice((1, 1, 2, 5, 10, 25, 120)),
            "newsletter": rng.random() < 0.4,
        }
    return made


class _Timeline:
    """The events of one person, built session by session with the person's own RNG."""

    def __init__(self, who: Person, rng: random.Random, now: int):
        self.who, self.rng, self.now = who, rng, now
        self.client: list[TrackItem] = []  # client events (and server events by userId)
        self.server: list[TrackItem] = []  # server events by identity, sent after identify

    def stamp(self, micros: int) -> str:
        """An ISO 8601 timestamp with milliseconds, as SDKs send them."""
        return to_datetime(micros).isoformat(timespec="milliseconds")

    def add(self, into: list[TrackItem], at: int, **fields: Any) -> bool:
        """Append an event unless it would lie in the future; False when it does."""
        if at > self.now:
            return False
        into.append(TrackItem(timestamp=self.stamp(at), **fields))
        return True

    def web_session(self, user_id: int, agent: str, start: int, *, login: bool) -> int:
        """Pageviews and clicks from a landing page; the time of the last event."""
        rng, who = self.rng, self.who
        query, referrer, _ = rng.choices(ARRIVALS, [w for *_, w in ARRIVALS])[0]
        page = rng.choice(LANDINGS)
        at = start
        base = {"userAgent": agent, "location": who.location}
        first = {**base, "url": f"{SITE}{page}" + (f"?{query}" if query else "")}
        if referrer:
            first["referrer"] = referrer
        steps = rng.randint(1, 5)
        identity = who.identity if login else None
        for step in range(steps):
            title, elements = PAGES[page]
            context = first if step == 0 else {**base, "url": f"{SITE}{page}"}
            if not self.add(
                self.client,
                at,
                event="pageview",
                user_id=str(user_id),
                source="WEB",
                context={**context, "title": title},
            ):
                return at
            at += rng.randint(3, 40) * MICROS + rng.randrange(1000) * 1000
            element = rng.choice(elements)
            clicks = rng.randint(3, 5) if rng.random() < 0.04 else 1  # a rage-click burst
            properties = {"hierarchy": element.hierarchy, "target_text": element.text}
            if element.href:
                properties["href"] = element.href
            for _ in range(clicks):
                self.add(
                    self.client,
                    at,
                    event="click",
                    user_id=str(user_id),
                    source="WEB",
                    properties=properties,
                    context={**base, "url": f"{SITE}{page}"},
                    identity=identity,
                )
                identity = None  # the SDK identifies once, with the login click
                at += rng.randint(120, 600) * 1000  # < 1 s apart within a burst
            if page == "/checkout" and who.identity is not None:
                # The payment service confirms the order inside the client session.
                amount = rng.choice((59.0, 89.5, 129.0, 240.0))
                self.add(
                    self.server,
                    at + rng.randint(2, 20) * MICROS,
                    event="Order Completed",
                    identity=who.identity,
                    properties={"total": amount, "currency": "USD"},
                )
            at += rng.randint(5, 120) * MICROS
            page = rng.choice(NEXT_PAGES[page])
        return at

    def app_session(self, user_id: int, source: str, start: int, *, login: bool) -> int:
        """Screen views and touches in the iOS or Android app (5-minute inactivity)."""
        rng = self.rng
        context = {**APPS[source], "location": self.who.location}
        at = start
        identity = self.who.identity if login else None
        for _ in range(rng.randint(2, 9)):
            screen = rng.choice(SCREENS)
            event, properties = (
                ("screenview", {"name": screen})
                if rng.random() < 0.5
                else ("touch", {"target_text": rng.choice(("Buy", "Add", "Back", "Search"))})
            )
            if not self.add(
                self.client,
                at,
                event=event,
                user_id=str(user_id),
                source=source,
                properties={**properties, "screen": screen},
                context=context,
                identity=identity,
            ):
                return at
            identity = None
            at += rng.randint(2, 150) * MICROS  # under the 5-minute mobile timeout
        return at

    def server_events(self, first_us: int) -> None:
        """Invoices and emails at times unrelated to client sessions."""
        rng, who = self.rng, self.who
        if who.identity is None:
            if rng.random() < 0.1:  # a newsletter subscriber known only by userId
                at = first_us + rng.randint(1, 72) * HOUR_US
                self.add(
                    self.client,
                    at,
                    event="Email Opened",
                    user_id=str(who.user_id),
                    properties={"campaign": "weekly_digest"},
                )
            return
        price = dict(PLANS)[who.properties["plan"]]
        at = first_us + rng.randint(1, 48) * HOUR_US
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            if price and not self.add(
                self.server,
                at,
                event="Invoice Paid",
                identity=who.identity,
                properties={
                    "amount": price * who.properties["seats"],
                    "currency": "USD",
                    "plan": who.properties["plan"],
                },
            ):
                break
            at += rng.randint(2, 9) * DAY_US
        if rng.random() < 0.5:
            at = first_us + rng.randint(1, 120) * HOUR_US
            subject = rng.choice(("Your weekly digest", "Winter sale: 30% off", "Order shipped"))
            self.add(
                self.server,
                at,
                event="Email Opened",
                identity=who.identity,
                properties={"campaign": "lifecycle", "subject": subject},
            )


def _activity(who: Person, *, seed: int, days: int, now: int) -> _Timeline:
    """All events of one person: client sessions from their first visit until now."""
    rng = random.Random(f"usertrail-demo-activity:{seed}:{who.index}")
    timeline = _Timeline(who, rng, now)
    power = who.index % POWER_USER_EVERY == 0
    span = days * DAY_US
    at = now - (
        span - rng.randrange(HOUR_US) if power else rng.randrange(HOUR_US, max(span, 2 * HOUR_US))
    )
    first_us = at
    sessions = rng.randint(25, 40) if power else min(1 + int(rng.expovariate(1.2)), 12)
    gap_us = span // (2 * sessions) if power else span // 4
    if who.second_device is not None:  # browsing anonymously on a phone before signing up
        phone = rng.choice([a for a, _ in WEB_AGENTS if "Mobile" in a])
        earlier = max(at - rng.randint(2, 48) * HOUR_US, now - span)
        timeline.web_session(who.second_device, phone, earlier, login=False)

    def visit(start: int, *, login: bool) -> int:
        if who.platform == "WEB":
            assert who.user_agent is not None
            end = timeline.web_session(who.user_id, who.user_agent, start, login=login)
        else:
            end = timeline.app_session(who.user_id, who.platform, start, login=login)
        if power:  # long sessions for the timeline: up to ~50 events
            for _ in range(rng.randint(2, 5)):
                end = timeline.web_session(
                    who.user_id, WEB_AGENTS[0][0], end + MINUTE_US, login=False
                )
        return end

    end = at
    for number in range(sessions):
        if at > now:
            break
        end = visit(at, login=number == 0 and who.identity is not None)
        at = end + 31 * MINUTE_US + int(rng.expovariate(1.0) * gap_us)
    online = now - rng.randint(1, 20) * MINUTE_US
    if rng.random() < 0.04 and online > end + 31 * MINUTE_US:  # using the product right now
        visit(online, login=False)
    timeline.server_events(first_us)
    return timeline


def generate(
    *, users: int, days: int = 14, seed: int = 1, now: int | None = None, batch_size: int = 500
) -> Iterator[DemoBatch]:
    """Batches for `users` people active over the `days` days before `now` (default: now).

    Per chunk of people: their client events, then identify calls (merging second devices),
    then server events by identity, then user properties, each in batches of `batch_size`.
    """
    end = now_us() if now is None else now
    for start in range(0, users, CHUNK):
        people = [person(seed=seed, index=i) for i in range(start, min(start + CHUNK, users))]
        client: list[TrackItem] = []
        server: list[TrackItem] = []
        for who in people:
            timeline = _activity(who, seed=seed, days=days, now=end)
            client += timeline.client
            server += timeline.server
        identifies = [
            IdentifyCall(str(p.second_device), p.identity)
            for p in people
            if p.second_device is not None and p.identity is not None
        ]
        properties = [
            UserPropertiesItem(properties=p.properties, identity=p.identity)
            for p in people
            if p.identity is not None
        ]
        out = [
            *(DemoBatch("track", events=part) for part in _parts(client, batch_size)),
            *(DemoBatch("identify", identifies=part) for part in _parts(identifies, batch_size)),
            *(DemoBatch("track", events=part) for part in _parts(server, batch_size)),
            *(DemoBatch("properties", properties=part) for part in _parts(properties, batch_size)),
        ]
        if out:
            out[-1].people = len(people)
        yield from out


def _parts(items: list[Any], size: int) -> Iterator[list[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


@dataclass(slots=True)
class LoadReport:
    """What `load` stored."""

    people: int = 0
    events: int = 0
    identified: int = 0
    merges: int = 0
    property_updates: int = 0


class DemoRefused(RuntimeError):
    """The ingestion service refused a demo item: a bug in the generator or the service."""


async def load(
    db: Database,
    *,
    environment_id: int,
    batches: Iterable[DemoBatch],
    on_batch: Callable[[DemoBatch, LoadReport], None] | None = None,
) -> LoadReport:
    """Send the batches through the ingestion service, in order; raise if any item is refused."""
    report = LoadReport()
    for batch in batches:
        if batch.kind == "track":
            outcome = await ingest.track(db, environment_id=environment_id, items=batch.events)
            _check(outcome)
            report.events += outcome.accepted
            report.identified += sum(1 for e in batch.events if e.identity and e.user_id)
        elif batch.kind == "identify":
            for call in batch.identifies:
                done = await ingest.identify(
                    db, environment_id=environment_id, user_id=call.user_id, identity=call.identity
                )
                report.merges += done.merged
        else:
            outcome = await ingest.add_user_properties(
                db, environment_id=environment_id, items=batch.properties
            )
            _check(outcome)
            report.property_updates += outcome.accepted
        report.people += batch.people
        if on_batch is not None:
            on_batch(batch, report)
    return report


def _check(outcome: ingest.Outcome) -> None:
    if outcome.problems:
        first = outcome.problems[0]
        raise DemoRefused(
            f"{len(outcome.problems)} demo items refused; first at index {first.index}: "
            f"{first.code} {first.field}: {first.message}"
        )


async def is_empty(db: Database) -> bool:
    """True when the database holds no user at all (in any environment)."""
    async with db.read() as conn:
        return not await conn.scalar(select(exists().select_from(User.__table__)))


async def stored_events(db: Database, *, environment: str) -> int:
    """How many events the environment called `environment` holds (0 when it does not exist)."""
    events, environments = Event.__table__, Environment.__table__
    async with db.read() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(events)
            .join(environments, environments.c.id == events.c.environment_id)
            .where(environments.c.name == environment)
        )
    return int(count or 0)
