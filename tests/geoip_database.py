"""A small MaxMind DB file the tests write themselves (with `mmdb-writer`), and what it holds.

Records have the GeoIP2 City layout (English names, ISO codes). The database also lists a
private and a loopback network, so that a test can show those addresses locate nothing even
when a database would answer for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def _record(country: tuple[str, str], region: tuple[str, str] | None, city: str | None) -> Any:
    record: dict[str, Any] = {"country": {"iso_code": country[0], "names": {"en": country[1]}}}
    if region is not None:
        record["subdivisions"] = [{"iso_code": region[0], "names": {"en": region[1]}}]
    if city is not None:
        record["city"] = {"names": {"en": city}}
    return record


NETWORKS = {
    "81.2.69.0/24": _record(("GB", "United Kingdom"), ("ENG", "England"), "London"),
    "2.125.160.216/29": _record(("GB", "United Kingdom"), ("ENG", "England"), "Boxford"),
    "2a02:8010::/32": _record(("DE", "Germany"), ("BE", "Berlin"), "Berlin"),
    "89.160.20.0/24": _record(("SE", "Sweden"), None, None),  # a country, nothing finer
    "10.0.0.0/8": _record(("ZZ", "Private Land"), None, "Nowhere"),
    "127.0.0.0/8": _record(("ZZ", "Loopback Land"), None, "Localhost"),
}

# What the API shows for an address in each network: written out, not read from the file.
LONDON = {"country": "United Kingdom", "region": "England", "city": "London"}
BOXFORD = {"country": "United Kingdom", "region": "England", "city": "Boxford"}
BERLIN = {"country": "Germany", "region": "Berlin", "city": "Berlin"}
SWEDEN = {"country": "Sweden", "region": None, "city": None}


def write_geoip_database(path: Path) -> Path:
    """Write the test database (IPv6, IPv4 networks mapped into it as MaxMind's are)."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["en"],
        description="Usertrail test data",
    )
    for network, record in NETWORKS.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
