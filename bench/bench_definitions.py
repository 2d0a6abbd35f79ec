"""How long defineEvent takes to apply to N stored events, and what definitions add to ingestion.

    .venv/bin/python bench/bench_definitions.py                 # 1,000,000 events (SQLite)
    .venv/bin/python bench/bench_definitions.py --events 20000  # CI-sized

Synthetic events (web pageviews, clicks with Heap hierarchies, changes, submits, server
events) go straight into the events table with executemany; then each definition kind is
created through `services.definitions.create` (the defineEvent service: validation, insert
and backfill in one transaction) and timed. Ingestion cost: `match_new_events` over batches
of 1000 new events with 0 and K active definitions, per event and definition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from models import DefinitionMatch
from models.db import Database
from models.migrate import upgrade
from services import definitions, environments
from services.conditions import PropertyCondition
from services.matching import Criterion, StringMatch

START_US = 1_772_000_000_000_000  # 2026-02-25
SPAN_US = 30 * 86_400_000_000
TAGS = ("button", "a", "span", "div", "input", "li", "img")
CLASSES = ("btn", "btn-primary", "buy", "nav", "link", "item", "card", "icon", "active", "cta")
SECTIONS = ("checkout", "header", "footer", "pricing", "sidebar", "cart", "search", "profile")
PATHS = tuple(f"/{a}/{b}" for a in ("docs", "shop", "blog", "app", "help") for b in range(60))
TEXTS = ("Buy now", "Add to cart", "Sign up", "Log in", "Next", "Search", "Learn more", "")
MATCHES = DefinitionMatch.__table__
SERVER_TYPES = ("Invoice Paid", "Signed Up", "Plan Changed", "Search Performed")


def _hierarchy(rng: random.Random) -> str:
    section = rng.choice(SECTIONS)
    tag = rng.choice(TAGS)
    classes = "".join(f".{c};" for c in rng.sample(CLASSES, rng.randint(0, 3)))
    attribute = f"[data-sku={rng.randint(1, 40)}];" if rng.random() < 0.3 else ""
    wrapper = f"@div;.row-{rng.randint(1, 12)};|" if rng.random() < 0.5 else ""
    return f"@html;|@body;|@div;#{section};.panel;|{wrapper}@{tag};{classes}{attribute}|"


def _events(count: int, environment_id: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Rows of the events table in arrival order (time order, ids rising), ~count/100 users."""
    # One site: every batch draws from the same 3000 elements.
    site = random.Random(7)
    hierarchies = [_hierarchy(site) for _ in range(3000)]
    rng = random.Random(seed)
    users = max(1, count // 100)
    step = SPAN_US // max(count, 1)
    for index in range(count):
        user = rng.randint(1, users)
        time_us = START_US + index * step + rng.randrange(max(step, 1))
        roll = rng.random()
        path = rng.choice(PATHS)
        web = {"domain": "shop.example.com", "path": path, "title": path.title()}
        if roll < 0.35:
            kind, source, properties = "pageview", "WEB", web
        elif roll < 0.75:
            kind, source = "click", "WEB"
            properties = web | {
                "hierarchy": rng.choice(hierarchies),
                "target_text": rng.choice(TEXTS),
            }
        elif roll < 0.88:
            kind, source = rng.choice(("change", "submit")), "WEB"
            properties = web | {"hierarchy": rng.choice(hierarchies)}
        else:
            kind, source = rng.choice(SERVER_TYPES), "SERVER"
            properties = {"amount": rng.randint(1, 500), "plan": rng.choice(("free", "pro"))}
        yield (
            environment_id,
            user,
            index + 1,
            user,  # session id: any value; sessions do not matter here
            kind,
            time_us,
            source,
            None,
            orjson.dumps(properties).decode(),
            "{}",
            0,
            time_us,
            None,
        )


def fill(path: Path, environment_id: int, count: int) -> float:
    """Insert `count` synthetic events; returns the seconds it took."""
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-262144")
    rows = _events(count, environment_id)
    while True:
        batch = [row for _, row in zip(range(50_000), rows, strict=False)]
        if not batch:
            break
        connection.executemany(
            "INSERT INTO events (environment_id, user_id, id, session_id, type, time_us, source,"
            " client_session_id, properties, context, replay, received_us, idempotency_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return time.perf_counter() - started


DEFINITIONS: dict[str, list[Criterion]] = {
    "selector (click '#checkout button.buy')": [
        Criterion("click", selector="#checkout button.buy"),
    ],
    "path + target text (pure SQL)": [
        Criterion(
            "click",
            path=StringMatch("MATCHES", "/shop/*"),
            target_text=StringMatch("CONTAINS", "cart"),
        ),
    ],
    "numeric property (server event)": [
        Criterion("Invoice Paid", properties=(PropertyCondition("amount", "GREATER_THAN", 250),)),
    ],
    "combo of 3 (selector, path, property)": [
        Criterion("click", selector="#pricing > .btn-primary, #cart a.link"),
        Criterion("pageview", path=StringMatch("STARTS_WITH", "/docs/")),
        Criterion("Signed Up", properties=(PropertyCondition("plan", "EQUALS", "pro"),)),
    ],
    "every click (worst case: 40% of events)": [Criterion("click")],
}


async def _backfills(db: Database, environment_id: int) -> list[dict[str, Any]]:
    results = []
    for index, (label, criteria) in enumerate(DEFINITIONS.items()):
        started = time.perf_counter()
        row = await definitions.create(
            db, environment_id=environment_id, name=f"bench {index}", criteria=criteria
        )
        seconds = time.perf_counter() - started
        async with db.read() as conn:
            count = await definitions.event_count(
                conn, environment_id=environment_id, definition_id=row.id
            )
        results.append({"definition": label, "seconds": seconds, "matches": count})
        await definitions.delete(db, environment_id=environment_id, definition_id=row.id)
    return results


def _live_definitions(count: int) -> list[list[Criterion]]:
    rng = random.Random(11)
    made: list[list[Criterion]] = []
    for index in range(count):
        if index % 3 == 0:
            selector = f"#{rng.choice(SECTIONS)} {rng.choice(TAGS)}.{rng.choice(CLASSES)}"
            made.append([Criterion("click", selector=selector)])
        elif index % 3 == 1:
            made.append([Criterion("pageview", path=StringMatch("EQUALS", rng.choice(PATHS)))])
        else:
            made.append(
                [
                    Criterion(
                        "click",
                        target_text=StringMatch("CONTAINS", rng.choice(TEXTS[:-1])),
                        path=StringMatch("STARTS_WITH", "/shop"),
                    )
                ]
            )
    return made


def _new_rows(environment_id: int, count: int, seed: int) -> list[dict[str, Any]]:
    keys = ("environment_id", "user_id", "id", "session_id", "type", "time_us", "source")
    rows = []
    for row in _events(count, environment_id, seed=seed):
        record = dict(zip(keys, row[:7], strict=True))
        record["properties"] = orjson.loads(row[8])
        record["context"] = {}
        rows.append(record)
    return rows


async def _ingestion(db: Database, environment_id: int, levels: list[int]) -> list[dict[str, Any]]:
    """Seconds of match_new_events per 1000-event batch with K active definitions."""
    results = []
    active = 0
    batches = [_new_rows(environment_id, 1000, seed) for seed in range(100, 105)]
    for level in levels:
        for criteria in _live_definitions(level)[active:]:
            active += 1
            await definitions.create(
                db, environment_id=environment_id, name=f"live {active}", criteria=criteria
            )
        timings = []
        for rows in batches:
            async with db.write_engine.connect() as conn:
                transaction = await conn.begin()
                started = time.perf_counter()
                await definitions.match_new_events(conn, environment_id=environment_id, rows=rows)
                timings.append(time.perf_counter() - started)
                matched = await conn.scalar(
                    select(func.count())
                    .select_from(MATCHES)
                    .where(MATCHES.c.environment_id == environment_id)
                )
                await transaction.rollback()
        results.append(
            {"definitions": level, "seconds_per_1000_events": min(timings), "matches": matched}
        )
    return results


async def run(events: int) -> dict[str, Any]:
    """Fill a fresh SQLite database with `events` events and time the definitions."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            environment_id = (await environments.ensure(db, name="bench")).id
            fill_seconds = fill(path, environment_id, events)
            backfills = await _backfills(db, environment_id)
            # Live matching in an environment of its own: its definitions need no backfill.
            live = (await environments.ensure(db, name="bench-live")).id
            ingestion = await _ingestion(db, live, [0, 10, 50])
        finally:
            await db.dispose()
    base = ingestion[0]["seconds_per_1000_events"]
    per_definition = [
        (row["seconds_per_1000_events"] - base) / row["definitions"] * 1e6 / 1000
        for row in ingestion[1:]
    ]
    return {
        "events": events,
        "fill_seconds": fill_seconds,
        "backfills": backfills,
        "ingestion": ingestion,
        "ingestion_us_per_event_per_definition": max(per_definition),
    }


def _print(result: dict[str, Any]) -> None:
    print(f"stored events: {result['events']:,} (filled in {result['fill_seconds']:.1f} s)")
    print("defineEvent (validate, insert, backfill) on SQLite:")
    for row in result["backfills"]:
        print(f"  {row['seconds']:7.2f} s  {row['matches']:>9,} matches  {row['definition']}")
    print("ingestion, match_new_events per batch of 1000 events:")
    for row in result["ingestion"]:
        print(
            f"  {row['definitions']:3d} active definitions: "
            f"{row['seconds_per_1000_events'] * 1000:7.2f} ms ({row['matches']} matches)"
        )
    print(
        "  cost per active definition: "
        f"{result['ingestion_us_per_event_per_definition']:.2f} µs per event"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="stored events")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.events))
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
