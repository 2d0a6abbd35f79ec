"""Where an event happened, from the IP address of the client that sent it (issue 21).

One rule for every way in (GraphQL, Segment, Heap), applied while an event is validated:

- the client's own `context.location` wins: the caller knows better than a database of
  address ranges (a mobile app's GPS, a relay that located the user itself);
- else an explicit `context.ip` is looked up, for client and server-side events alike (a
  server that relays a user's event may say which address the user had);
- else, for client-side sources only (WEB, IOS, ANDROID), the address the request came from
  (`Sender.address`: the peer, or the client a trusted proxy names). A server-side event is
  never located by the request's address: the server that sent it is not the user;
- addresses that are not globally routable (private, loopback, link-local, shared, reserved,
  documentation ranges) locate nothing, and neither do addresses the database lacks;
- the IP address itself is never stored: it is dropped from the event's context once used,
  with or without a database, and only the location it gave is kept.

The database is a MaxMind DB file (GeoLite2 / GeoIP2 City or Country, or any database with
their record layout), read with `maxminddb`; the English names are kept (`United Kingdom`,
`England`, `London`), as the demo data and the `Initial Country` property hold them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from services.autocapture import location_from
from services.errors import UnusableGeoDatabase

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: object) -> IPAddress | None:
    """An IP address from text (an IPv4-mapped IPv6 address as its IPv4 one), or None."""
    if not isinstance(text, str):
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_locatable(address: IPAddress) -> bool:
    """True for a globally routable unicast address: the others say nothing of a place."""
    return address.is_global and not address.is_multicast


class GeoDatabase:
    """A MaxMind DB file opened for lookups (memory-mapped: worker processes share pages)."""

    def __init__(self, path: str):
        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, InvalidDatabaseError, ValueError) as error:
            raise UnusableGeoDatabase(path, str(error)) from None
        self.path = path

    def close(self) -> None:
        """Release the file."""
        self._reader.close()

    def locate(self, text: object) -> dict[str, str] | None:
        """{country, region, city} (those known) of an address, or None."""
        address = parse_address(text)
        if address is None or not is_locatable(address):
            return None
        try:
            record = self._reader.get(address)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None
        return location_of_record(record) if isinstance(record, Mapping) else None


def location_of_record(record: Mapping[str, Any]) -> dict[str, str] | None:
    """The location a City or Country record gives: English names, else ISO codes."""
    subdivisions = record.get("subdivisions")
    first_subdivision = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else {}
    return location_from(
        {
            "country": _name(record.get("country")),
            "region": _name(first_subdivision),
            "city": _name(record.get("city")),
        }
    )


def _name(part: object) -> str | None:
    if not isinstance(part, Mapping):
        return None
    names = part.get("names")
    name = names.get("en") if isinstance(names, Mapping) else None
    if isinstance(name, str) and name:
        return name
    code = part.get("iso_code")
    return code if isinstance(code, str) and code else None


@dataclass(frozen=True, slots=True)
class Sender:
    """What locating a request's events needs: the database, and the client's address
    (None when unknown: no peer, or a trusted proxy that names no untrusted client)."""

    geo: GeoDatabase
    address: str | None = None


def located(source: str, context: dict[str, Any], sender: Sender | None) -> dict[str, Any]:
    """The event's validated context with its location filled by the rules above and its IP
    address removed (the same dict, changed in place)."""
    explicit_ip = context.pop("ip", None)
    if sender is None or location_from(context.get("location")) is not None:
        return context
    if explicit_ip is not None:
        address = explicit_ip
    elif source != "SERVER":
        address = sender.address
    else:
        return context
    found = sender.geo.locate(address)
    if found is not None:
        context["location"] = found
    return context
