"""The per-request context every type and resolver receives; graph/loaders.py holds its loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graph.loaders import Loaders
from models.db import Database
from services.keys import Principal


@dataclass(slots=True)
class Context:
    """Database, environment, dataloaders and caller of one GraphQL request."""

    db: Database
    environment_id: int
    dev: bool
    loaders: Loaders
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Who is asking: the environment and scope of the request's API key (dev mode: admin).
    principal: Principal | None = None
    request_id: str | None = None
