"""The Starlette application: GraphQL, health, the Heap and Segment routes, and their guards.

Middleware, outermost first: security headers, CORS (and dev mode's refusal of other
origins), request ids (and JSON for any exception a route let escape), metrics, then body
size limits. Which environment a request acts in comes from its credentials:
the API key (GraphQL), the write key (Segment), the app_id (Heap); dev mode puts every
request in the `default` environment.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graph.extensions import quiet_strawberry_errors, without_introspection
from graph.schema import build
from models.db import Database
from server import export, heap_api, metrics, request_ids, segment_api
from server.assets import Assets
from server.client_address import TrustedProxies, open_geo_database, sender_of
from server.cross_origin import CrossOrigin, allowed_origins
from server.graphql_app import GraphQLApp
from server.http_errors import HttpProblem
from server.limits import BodyLimits
from server.page import routes as page_routes
from server.persisted_queries import PersistedQueries
from server.security_headers import SecurityHeaders
from server.settings import Settings
from services import autocapture, environments, keys
from services.geolocation import GeoDatabase, Sender
from services.live import LiveHub
from services.live_notify import Hearing

# Loggers whose unexpected-failure records do not name the request id themselves.
TAGGED_LOGGERS = ("server.http_errors",)
# Allocations (net of frees) between young-generation collections (CPython default 700).
GC_YOUNG_THRESHOLD = 20_000


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    default_environment_id: int | None = None
    geo: GeoDatabase | None = None  # USERTRAIL_GEOIP_DB, opened
    trusted_proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))

    def sender_for(self, request: Request | Any) -> Sender | None:
        """What locating the events of a request needs (None without a GeoIP database)."""
        return sender_of(request, self.geo, self.trusted_proxies)
    live: LiveHub | None = None  # the process's live event subscribers (services/live.py)

    async def environment_for(self, request: Request | Any) -> int:
        """The environment a GraphQL request acts in: its key's (dev mode: `default`)."""
        if self.settings.dev:
            if self.default_environment_id is None:  # lazily: the database may be down
                self.default_environment_id = (await environments.ensure(self.db)).id
            return self.default_environment_id
        principal = getattr(request.state, "principal", None)
        if principal is None:  # server/auth.py authenticates every request that gets here
            raise RuntimeError("an unauthenticated request reached the GraphQL context")
        return int(principal.environment_id)

    async def principal_for_key(self, key: str) -> keys.Principal | None:
        """The environment and scope of an active API key, or None."""
        async with self.db.read() as conn:
            return await keys.authenticate(conn, key)

    async def environment_for_app_id(self, app_id: str) -> int | None:
        """The environment a Heap `app_id` names, or None (dev mode: any app id is `default`)."""
        if self.settings.dev:
            return await self.environment_for(None)
        async with self.db.read() as conn:
            found = await environments.get_by_app_id(conn, app_id=app_id)
        return found.id if found is not None else None

    async def environment_for_write_key(self, write_key: str) -> int | None:
        """The environment of a Segment write key: an active ingest or admin API key.

        None for an unknown or revoked key; HTTP 403 for a key of another scope (dev mode:
        any key is `default`).
        """
        if self.settings.dev:
            return await self.environment_for(None)
        principal = await self.principal_for_key(write_key)
        if principal is None:
            return None
        if not principal.may("ingest"):
            raise HttpProblem(
                403,
                "FORBIDDEN",
                f"the write key is an API key with scope {principal.scope}; "
                "the Segment API needs one with scope ingest (or admin)",
                requiredScope="ingest",
            )
        return principal.environment_id


async def healthz(request: Request) -> JSONResponse:
    db: Database = request.app.state.usertrail.db
    if await db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "error": "database unreachable"}, status_code=503)


def _tune_garbage_collector() -> None:
    """Keep the cyclic collector off the objects that live as long as the app, and run it
    less often: a batch of 500 events allocates enough to trigger a young collection every
    few dozen events, each one walking everything that survived (profiles: ~10 % of
    ingestion time). Garbage without cycles is freed by reference counting either way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for `settings`; the database must already be migrated."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url, statement_timeout=settings.statement_timeout)
        live = LiveHub(db, queue_size=settings.live_queue)
        hearing = Hearing(live)
        await hearing.start()
        app.state.usertrail = AppState(
            settings,
            db,
            geo=geo,
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            live=live,
        )
        autocapture.warm_up()
        _tune_garbage_collector()
        try:
            yield
        finally:
            await hearing.close()
            await live.close()
            await db.dispose()
            if geo is not None:
                geo.close()

    allowed_origins(settings)  # a CORS setting dev mode refuses fails here, not at a request
    geo = open_geo_database(settings)  # and so does a GeoIP database that cannot be read
    request_ids.tag_logs(*TAGGED_LOGGERS)
    quiet_strawberry_errors()
    schema = build(dev=settings.dev, fast_paths=settings.fast_paths)
    if not settings.introspection_on:
        schema = without_introspection(schema)
    assets = Assets(Path(settings.assets_dir)) if settings.assets_dir else Assets()
    graphql = GraphQLApp(
        schema,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allowed_origins=allowed_origins(settings)[0],
        fast_json=settings.fast_paths,
        graphql_ide="graphiql" if settings.introspection_on else None,
        assets=assets,
        persisted_queries=PersistedQueries(
            max_entries=settings.persisted_query_entries,
            max_bytes=settings.persisted_query_bytes,
        ),
    )
    routes = [
        *page_routes,  # GET /: the Users & Sessions page, and its files under /page/
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions (server/subscriptions.py)
        *assets.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        *metrics.routes,
        *heap_api.routes,
        *segment_api.routes,
        *export.routes,
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(CrossOrigin, settings=settings),  # outside RequestIds: its 500s get CORS
        Middleware(request_ids.RequestIds),
        Middleware(metrics.MetricsMiddleware),
        Middleware(BodyLimits),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings from USERTRAIL_* variables."""
    return create_app(Settings.from_env())
