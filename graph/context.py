"""The per-request context every type and resolver receives; graph/loaders.py holds its loaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graph.loaders import Loaders
from models.db import Database
from services.geolocation import Sender
from services.keys import Principal
from services.live import LiveHub


@dataclass(frozen=True, slots=True)
class Builders:
    """How a field builds an object of a type defined in a module above its own, from a row.

    A type module imports only the types below it (definition <- event <- session <- user),
    so the house has no import circles; the fields that point back up (Event.session,
    Event.user, Session.user) build through these, filled in by graph/schema.py.
    """

    session: Callable[[Any], Any]
    user: Callable[[Any], Any]


@dataclass(slots=True)
class Context:
    """Database, environment, dataloaders and caller of one GraphQL request."""

    db: Database
    environment_id: int
    dev: bool
    loaders: Loaders
    build: Builders
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Who is asking: the environment and scope of the request's API key (dev mode: admin).
    principal: Principal | None = None
    request_id: str | None = None
    # What locating the request's events by IP address needs (None: no GeoIP database).
    sender: Sender | None = None
    # The process's live subscribers (subscriptions); None where there is none (tests).
    live: LiveHub | None = None
    # A WebSocket's `connection_init` payload (Strawberry sets it; the key may be in it).
    connection_params: Any = None
    websocket: bool = False  # a subscription's connection (subscriptions need one)
