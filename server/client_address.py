"""The address of the client behind a request, and what locating its events needs.

The peer of the connection is the client, unless it is a trusted proxy
(USERTRAIL_TRUSTED_PROXIES): then `X-Forwarded-For` names the client, read from the right
(each proxy appends the address it was reached from), skipping the trusted proxies; the first
address that is not one is the client. From any other peer the header is ignored: anyone can
send it. A trusted proxy that names no untrusted address (or an unreadable one) leaves the
client unknown: the proxy's own address is not the user's.

`usertrail serve` runs uvicorn without its own proxy-header handling, which would otherwise
replace the peer by the header's client for requests from 127.0.0.1 before this module sees
them. Only locating events by IP uses this (services/geolocation.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from server.settings import SettingError, Settings
from services.errors import UnusableGeoDatabase
from services.geolocation import GeoDatabase, IPAddress, Sender, parse_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose peers may say, in X-Forwarded-For, whom they forward."""

    def __init__(self, networks: Sequence[str]):
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in networks
        )

    def __contains__(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address, from the peer's and the X-Forwarded-For headers' values."""
        peer_address = parse_address(peer)
        if peer_address is None:
            return None
        if peer_address not in self:
            return str(peer_address)
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = parse_address(_without_port(hop))
            if address is None:
                return None  # a hop we cannot read: whoever is beyond it is unknown
            if address not in self:
                return str(address)
        return None


def _without_port(hop: str) -> str:
    """`[2001:db8::1]:443` and `203.0.113.7:5000` without the port some proxies append."""
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def sender_of(
    connection: HTTPConnection, geo: GeoDatabase | None, trusted: TrustedProxies
) -> Sender | None:
    """What locating the events of this request needs; None without a GeoIP database."""
    if geo is None:
        return None
    peer = connection.client.host if connection.client is not None else None
    return Sender(geo, trusted.client(peer, connection.headers.getlist("x-forwarded-for")))


def open_geo_database(settings: Settings) -> GeoDatabase | None:
    """The GeoIP database the settings name, or None; SettingError naming the setting when
    the file cannot be used (the server refuses to start rather than silently not locate)."""
    if not settings.geoip_db:
        return None
    try:
        return GeoDatabase(settings.geoip_db)
    except UnusableGeoDatabase as error:
        raise SettingError(
            f"USERTRAIL_GEOIP_DB (--geoip-db): cannot read {error.path!r} as a MaxMind DB file "
            f"({error.reason}); give the path of a GeoLite2 or GeoIP2 City or Country database "
            "(.mmdb), or leave the setting empty to keep the locations clients send"
        ) from None
