"""The rules that pick the address an event is located by (services/geolocation.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.geolocation import GeoDatabase, Sender, located
from tests.geoip_database import BERLIN, LONDON, write_geoip_database

PARIS = {"country": "France", "region": "Île-de-France", "city": "Paris"}


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeoDatabase]:
    database = GeoDatabase(str(write_geoip_database(tmp_path_factory.mktemp("g") / "c.mmdb")))
    yield database
    database.close()


@pytest.mark.parametrize(
    ("source", "context", "peer", "expected"),
    [
        # an explicit context.ip, client or server-side
        ("WEB", {"ip": "81.2.69.1"}, "2a02:8010::1", {"location": LONDON}),
        ("SERVER", {"ip": "81.2.69.1"}, "2a02:8010::1", {"location": LONDON}),
        # else the request's address, for client-side sources only
        ("IOS", {}, "2a02:8010::1", {"location": BERLIN}),
        ("SERVER", {}, "2a02:8010::1", {}),
        ("WEB", {}, None, {}),
        # an explicit address that locates nothing does not fall back to the request's
        ("WEB", {"ip": "10.9.9.9"}, "81.2.69.1", {}),
        ("WEB", {"ip": "::1"}, "81.2.69.1", {}),
        ("WEB", {"ip": "ff02::1"}, "81.2.69.1", {}),
        # the client's own location wins
        ("WEB", {"ip": "81.2.69.1", "location": PARIS}, None, {"location": PARIS}),
        # one without any known part is none
        ("WEB", {"ip": "81.2.69.1", "location": {"planet": "Earth"}}, None, {"location": LONDON}),
    ],
)
def test_which_address_locates_an_event(
    geo: GeoDatabase,
    source: str,
    context: dict[str, Any],
    peer: str | None,
    expected: dict[str, Any],
) -> None:
    assert located(source, dict(context), Sender(geo, peer)) == expected


def test_without_a_database_the_address_is_dropped_and_the_location_kept() -> None:
    assert located("WEB", {"ip": "81.2.69.1", "location": PARIS}, None) == {"location": PARIS}
    assert located("WEB", {"ip": "81.2.69.1", "url": "https://a.b/"}, None) == {
        "url": "https://a.b/"
    }


def test_unusable_files_are_named(tmp_path: Path) -> None:
    from services.errors import UnusableGeoDatabase

    (tmp_path / "empty.mmdb").write_bytes(b"")
    for name in ("missing.mmdb", "empty.mmdb"):
        with pytest.raises(UnusableGeoDatabase) as refused:
            GeoDatabase(str(tmp_path / name))
        assert refused.value.path == str(tmp_path / name)
