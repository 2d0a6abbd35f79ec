"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.db import Database
from resolvers.loaders import Loaders


@dataclass(slots=True)
class Context:
    """Database, environment and dataloaders of one GraphQL request."""

    db: Database
    environment_id: int
    dev: bool
    loaders: Loaders
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
