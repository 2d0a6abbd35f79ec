"""What a session shows about where it came from, derived from its first client event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from services.autocapture import device_for, location_from, utm_params

UTM_KEYS = ("source", "medium", "campaign", "term", "content")


@dataclass(frozen=True, slots=True)
class SessionTraits:
    browser: str | None = None
    platform: str | None = None
    device_type: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    landing_page: str | None = None
    referrer: str | None = None
    utm: dict[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The session-row columns these traits fill."""
        return {name: getattr(self, name) for name in TRAIT_NAMES}


TRAIT_NAMES = tuple(f.name for f in fields(SessionTraits))
NO_TRAITS = SessionTraits()
TRAIT_COLUMNS = TRAIT_NAMES


def landing_url(properties: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """The page an event happened on: context.url, else domain + path (+ query) properties."""
    url = context.get("url")
    if isinstance(url, str) and url:
        return url
    domain, path = properties.get("domain"), properties.get("path")
    if not isinstance(path, str) or not path:
        return None
    query = properties.get("query")
    suffix = f"?{query}" if isinstance(query, str) and query else ""
    return f"{domain or ''}{path}{suffix}"


def session_traits(
    source: str, properties: Mapping[str, Any], context: Mapping[str, Any]
) -> SessionTraits:
    """The traits of a session whose first client event has these fields."""
    if source == "SERVER":
        return NO_TRAITS
    device = device_for(context.get("userAgent"), source)
    location = location_from(context.get("location")) or {}
    url = landing_url(properties, context)
    utm = utm_params(url)
    for key in UTM_KEYS:  # explicit utm_* properties win over the URL's
        value = properties.get(f"utm_{key}")
        if isinstance(value, str) and value:
            utm[key] = value
    referrer = properties.get("referrer") or context.get("referrer")
    return SessionTraits(
        browser=device.browser,
        platform=device.platform,
        device_type=device.device_type,
        country=location.get("country"),
        region=location.get("region"),
        city=location.get("city"),
        landing_page=url,
        referrer=referrer if isinstance(referrer, str) and referrer else None,
        utm=utm,
    )


@dataclass(frozen=True, slots=True)
class TraitSource:
    """A client event's fields that traits derive from: derived only if it starts a session."""

    source: str
    properties: Mapping[str, Any]
    context: Mapping[str, Any]

    def traits(self) -> SessionTraits:
        return session_traits(self.source, self.properties, self.context)


def traits_of_row(row: Mapping[Any, Any]) -> SessionTraits:
    """Traits stored on a session row."""
    return SessionTraits(**{name: row[name] for name in TRAIT_COLUMNS})
