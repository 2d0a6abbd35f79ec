"""The Starlette application: GraphQL, health, and (later) the Heap and Segment routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from graph.schema import build
from models.db import Database
from server import heap_api, segment_api
from server.graphql_app import GraphQLApp
from server.settings import Settings
from services import environments


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    default_environment_id: int | None = None

    async def environment_for(self, request: Request | Any) -> int:
        """The environment a request acts in (dev mode: the `default` environment)."""
        if self.default_environment_id is None:  # resolved lazily: the database may be down
            self.default_environment_id = (await environments.ensure(self.db)).id
        return self.default_environment_id

    async def environment_for_app_id(self, app_id: str) -> int | None:
        """The environment a Heap `app_id` names, or None (dev mode: any app id is `default`)."""
        if self.settings.dev:
            return await self.environment_for(None)
        async with self.db.read() as conn:
            found = await environments.get_by_app_id(conn, app_id=app_id)
        return found.id if found is not None else None

    async def environment_for_write_key(self, write_key: str) -> int | None:
        """The environment a Segment write key names, or None (dev mode: any key is `default`).

        Outside dev mode no key resolves until API keys exist.
        """
        if self.settings.dev:
            return await self.environment_for(None)
        return None


async def healthz(request: Request) -> JSONResponse:
    db: Database = request.app.state.usertrail.db
    if await db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "error": "database unreachable"}, status_code=503)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for `settings`; the database must already be migrated."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        app.state.usertrail = AppState(settings, db)
        try:
            yield
        finally:
            await db.dispose()

    graphql = GraphQLApp(build(dev=settings.dev), graphql_ide="graphiql")
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *heap_api.routes,
        *segment_api.routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings from USERTRAIL_* variables."""
    return create_app(Settings.from_env())
