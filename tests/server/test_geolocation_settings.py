"""USERTRAIL_GEOIP_DB and USERTRAIL_TRUSTED_PROXIES: start-up refusals, flags, workers.

An unusable GeoIP database stops the server before it serves (naming the setting); the
settings reach `usertrail serve`'s worker processes; and `usertrail serve` does not let
uvicorn believe X-Forwarded-For from 127.0.0.1 on its own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from server import cli
from server.app import create_app
from server.settings import SettingError, Settings, parse_networks
from tests.geoip_database import LONDON, write_geoip_database
from tests.reliability.processes import ServerProcess

QUERY = """
query($userId: String) { user(userId: $userId) { initialLocation { country region city } } }
"""
TRACK = """
mutation($input: TrackInput!) { track(input: $input) { accepted errors { code message } } }
"""


@pytest.fixture
def geoip_db(tmp_path: Path) -> Path:
    return write_geoip_database(tmp_path / "city.mmdb")


@pytest.fixture
def not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "city.mmdb"
    path.write_text("this is no MaxMind DB file\n")
    return path


def test_create_app_refuses_a_missing_or_unreadable_database(
    tmp_path: Path, not_a_database: Path
) -> None:
    for path in (tmp_path / "missing.mmdb", not_a_database):
        with pytest.raises(SettingError, match="USERTRAIL_GEOIP_DB") as refused:
            create_app(Settings(database_url="sqlite+aiosqlite:///unused.db", geoip_db=str(path)))
        assert str(path) in str(refused.value)


def test_serve_refuses_an_unusable_database_before_starting(
    tmp_path: Path,
    not_a_database: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be created here: it stops before migrating
    monkeypatch.delenv("USERTRAIL_GEOIP_DB", raising=False)
    monkeypatch.delenv("USERTRAIL_TRUSTED_PROXIES", raising=False)
    assert cli.main(["serve", "--geoip-db", str(tmp_path / "missing.mmdb")]) == 2
    error = capsys.readouterr().err
    assert "USERTRAIL_GEOIP_DB" in error and "missing.mmdb" in error
    monkeypatch.setenv("USERTRAIL_GEOIP_DB", str(not_a_database))
    assert cli.main(["serve"]) == 2
    assert "USERTRAIL_GEOIP_DB" in capsys.readouterr().err
    monkeypatch.delenv("USERTRAIL_GEOIP_DB")
    assert cli.main(["serve", "--trusted-proxies", "10.0.0.0/8, a-proxy"]) == 2
    assert "--trusted-proxies" in capsys.readouterr().err
    monkeypatch.setenv("USERTRAIL_TRUSTED_PROXIES", "10.0.0.0/33")
    assert cli.main(["migrate"]) == 2
    assert "USERTRAIL_TRUSTED_PROXIES" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["city.mmdb"]  # no database was made: nothing migrated


def test_trusted_proxies_are_networks() -> None:
    assert parse_networks(" 10.0.0.0/8, 192.168.1.7 ,, fd00::/8, 10.0.0.0/8", "X") == (
        "10.0.0.0/8",
        "192.168.1.7/32",
        "fd00::/8",
    )
    assert parse_networks("10.1.2.3/8", "X") == ("10.0.0.0/8",)  # what /8 means
    assert parse_networks("", "X") == ()
    for wrong in ("proxy.example.com", "10.0.0.0/33", "*"):
        with pytest.raises(SettingError, match="X"):
            parse_networks(wrong, "X")


def test_settings_from_env_and_back() -> None:
    settings = Settings.from_env(
        {
            "USERTRAIL_GEOIP_DB": " /var/lib/GeoLite2-City.mmdb ",
            "USERTRAIL_TRUSTED_PROXIES": "10.0.0.0/8,::1",
        }
    )
    assert settings.geoip_db == "/var/lib/GeoLite2-City.mmdb"
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert Settings.from_env(settings.as_env()) == settings
    default = Settings.from_env({})
    assert default.geoip_db == "" and default.trusted_proxies == ()
    assert Settings.from_env(default.as_env()) == default


class GeoServer(ServerProcess):
    """`usertrail serve --dev` with two workers and extra flags."""

    def __init__(self, database_url: str, log_dir: Path, *flags: str):
        super().__init__(database_url, log_dir, workers=2)
        self.flags = flags

    def command(self) -> list[str]:
        return [*super().command(), *self.flags]


@pytest.fixture
async def served(database_url: str, geoip_db: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A real `usertrail serve` with the database, and no trusted proxy."""
    server = GeoServer(database_url, tmp_path, "--geoip-db", str(geoip_db))
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


async def test_usertrail_serve_workers_locate_and_ignore_forwarded_for(served: str) -> None:
    when = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:

        async def track(user_id: str, context: dict[str, str]) -> None:
            event = {"event": "pageview", "userId": user_id, "source": "WEB",
                     "timestamp": when, "context": context}  # fmt: skip
            answer = await http.post(
                "/graphql",
                json={"query": TRACK, "variables": {"input": event}},
                headers={"X-Forwarded-For": "81.2.69.142"},
            )
            assert answer.json()["data"]["track"] == {"accepted": 1, "errors": []}

        async def location(user_id: str) -> object:
            answer = await http.post(
                "/graphql", json={"query": QUERY, "variables": {"userId": user_id}}
            )
            return answer.json()["data"]["user"]["initialLocation"]

        for n in range(4):  # whichever worker answers
            await track(f"{500 + n}", {"ip": "81.2.69.142"})
            await track(f"{600 + n}", {})
        for n in range(4):
            assert await location(f"{500 + n}") == LONDON
            # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; `usertrail serve`
            # turns that off: no trusted proxy, so the loopback peer is the client.
            assert await location(f"{600 + n}") is None
