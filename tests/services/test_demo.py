"""The demo population: deterministic, realistic, and accepted whole by the ingestion service."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Event, Session, User, UserAlias
from models.db import Database
from server.cli import main as usertrail
from services import demo, environments
from services.clock import DAY_US, MICROS, to_micros

NOW = to_micros(datetime(2026, 11, 20, 15, 30))
E, S, U, A = Event.__table__, Session.__table__, User.__table__, UserAlias.__table__


def _events(batches: list[demo.DemoBatch]) -> list[demo.TrackItem]:
    return [item for batch in batches for item in batch.events]


def _generate(users: int = 120, seed: int = 3, **options: int) -> list[demo.DemoBatch]:
    return list(demo.generate(users=users, days=14, seed=seed, now=NOW, **options))


def test_the_same_seed_gives_the_same_batches() -> None:
    assert _generate() == _generate()
    assert _events(_generate()) != _events(_generate(seed=4))


def test_the_events_do_not_depend_on_the_batch_size() -> None:
    assert _events(_generate(batch_size=500)) == _events(_generate(batch_size=37))
    assert all(len(batch) <= 37 for batch in _generate(batch_size=37))


def test_activity_ends_near_now_and_never_in_the_future() -> None:
    times = [to_micros(datetime.fromisoformat(e.timestamp)) for e in _events(_generate(400))]
    assert max(times) <= NOW
    assert max(times) >= NOW - 30 * 60 * MICROS  # some people are online right now
    assert min(times) >= NOW - 15 * DAY_US
    assert 8 <= len(times) / 400 <= 13  # roughly ten events per person


def _rage_bursts(clicks: list[tuple[str, str, int]]) -> int:
    """Bursts of ≥ 3 clicks by one user on one element, ≤ 1 s apart (SPEC §3)."""
    by_element: dict[tuple[str, str], list[int]] = defaultdict(list)
    for user, element, at in clicks:
        by_element[(user, element)].append(at)
    bursts = 0
    for times in by_element.values():
        times.sort()
        run = 1
        for before, after in zip(times, times[1:], strict=False):
            run = run + 1 if after - before <= MICROS else 1
            bursts += run == 3
    return bursts


def test_the_population_has_every_kind_of_activity() -> None:
    batches = _generate(400)
    events = _events(batches)
    assert {e.source for e in events} == {"WEB", "IOS", "ANDROID", "SERVER"}
    clicks = [e for e in events if e.event == "click"]
    assert all(e.properties["hierarchy"].startswith("@") for e in clicks)
    assert any("[data-sku=42];|" in e.properties["hierarchy"] for e in clicks)
    agents = {e.context["userAgent"] for e in events if e.source == "WEB"}
    assert any("iPhone" in a for a in agents) and any("Android" in a for a in agents)
    assert any("Firefox" in a for a in agents) and any("Macintosh" in a for a in agents)
    assert any("utm_source=" in (e.context or {}).get("url", "") for e in events)
    assert any((e.context or {}).get("referrer") for e in events)
    assert {"Invoice Paid", "Email Opened", "Order Completed"} <= {e.event for e in events}
    assert any(e.identity and e.user_id and e.source != "SERVER" for e in events)  # logins
    assert any(batch.kind == "identify" for batch in batches)  # second devices, merged
    assert any(batch.kind == "properties" for batch in batches)
    stamped = [
        (e.user_id, e.properties["hierarchy"], to_micros(datetime.fromisoformat(e.timestamp)))
        for e in clicks
    ]
    assert _rage_bursts(stamped) >= 3


async def test_loading_through_the_ingestion_service(db: Database, environment_id: int) -> None:
    assert await demo.is_empty(db)
    report = await demo.load(db, environment_id=environment_id, batches=_generate(150))
    assert report.people == 150
    assert report.events == len(_events(_generate(150)))
    assert report.merges > 0 and report.property_updates > 0
    assert not await demo.is_empty(db)
    async with db.read() as conn:
        mine = [E.c.environment_id == environment_id]
        users = (
            await conn.execute(select(U.c.identity).where(U.c.environment_id == environment_id))
        ).all()
        assert any(u.identity is None for u in users) and any(u.identity for u in users)
        merged = await conn.scalar(
            select(A.c.alias).where(A.c.environment_id == environment_id, A.c.kind == "user_id")
        )
        assert merged is not None  # a merged anonymous userId routes to its identified user
        sessions = (
            await conn.execute(
                select(S.c.source, S.c.origin)
                .where(S.c.environment_id == environment_id)
                .distinct()
            )
        ).all()
        assert {tuple(s) for s in sessions} >= {
            ("WEB", "CLIENT"),
            ("IOS", "CLIENT"),
            ("ANDROID", "CLIENT"),
            ("SERVER", "SERVER"),
        }
        inside = await conn.scalar(
            select(E.c.type)
            .join(S, (S.c.user_id == E.c.user_id) & (S.c.id == E.c.session_id))
            .where(*mine, S.c.environment_id == environment_id)
            .where(E.c.source == "SERVER", S.c.origin == "CLIENT")
            .limit(1)
        )
        assert inside is not None  # a server event inside a client session
        clicks = (
            await conn.execute(
                select(E.c.user_id, E.c.properties, E.c.time_us).where(*mine, E.c.type == "click")
            )
        ).all()
    assert _rage_bursts([(str(c.user_id), c.properties["hierarchy"], c.time_us) for c in clicks])


def test_the_demo_command_migrates_and_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/demo.db"
    assert usertrail(["demo", "--users", "25", "--days", "3", "--database-url", url]) == 0
    assert "of 25 people into environment 'default'" in capsys.readouterr().out


async def test_stored_events_counts_one_environments_events(db: Database) -> None:
    shop = await environments.ensure(db, name="shop")
    await environments.ensure(db, name="empty")
    report = await demo.load(db, environment_id=shop.id, batches=_generate(30))
    assert await demo.stored_events(db, environment="shop") == report.events > 0
    assert await demo.stored_events(db, environment="empty") == 0
    assert await demo.stored_events(db, environment="missing") == 0
