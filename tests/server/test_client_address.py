"""Whose address a request comes from, behind trusted proxies (server/client_address.py)."""

from __future__ import annotations

import pytest

from server.client_address import TrustedProxies

PROXIES = TrustedProxies(("10.0.0.0/8", "fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # an untrusted peer is the client, whatever it says
        ("81.2.69.1", ["2.125.160.216"], "81.2.69.1"),
        ("::ffff:81.2.69.1", [], "81.2.69.1"),
        # a trusted one names the client: the rightmost hop that is no trusted proxy
        ("10.0.0.1", ["81.2.69.1"], "81.2.69.1"),
        ("10.0.0.1", ["2.125.160.216, 81.2.69.1, 10.2.2.2"], "81.2.69.1"),
        ("10.0.0.1", ["2.125.160.216", "81.2.69.1 , 10.2.2.2"], "81.2.69.1"),  # two headers
        ("fd00::1", ["2a02:8010::1"], "2a02:8010::1"),
        # ports and brackets some proxies add
        ("10.0.0.1", ["81.2.69.1:51234"], "81.2.69.1"),
        ("10.0.0.1", ["[2a02:8010::1]:443"], "2a02:8010::1"),
        # no untrusted hop, or one that cannot be read: unknown, not the proxy
        ("10.0.0.1", [], None),
        ("10.0.0.1", ["10.3.3.3"], None),
        ("10.0.0.1", ["81.2.69.1, unknown"], None),
        ("10.0.0.1", ["81.2.69.1, "], None),
        (None, ["81.2.69.1"], None),
        ("not-an-address", ["81.2.69.1"], None),
    ],
)
def test_client_behind_trusted_proxies(
    peer: str | None, forwarded_for: list[str], client: str | None
) -> None:
    assert PROXIES.client(peer, forwarded_for) == client


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert TrustedProxies(()).client("127.0.0.1", ["81.2.69.1"]) == "127.0.0.1"
