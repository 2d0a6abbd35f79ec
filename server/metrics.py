"""Prometheus metrics: an ASGI middleware timing every request, and the /metrics route.

Who may read /metrics outside dev mode (dev mode: anyone, on loopback):
- `Authorization: Bearer <USERTRAIL_METRICS_KEY>`, the operator's key (Prometheus'
  `authorization: {credentials: …}`): every metric of the process;
- `Authorization: Bearer <an admin API key>`: only the samples labelled with that key's
  environment (nothing is visible across environments, SPEC §1);
- no key, or an unknown one: 401; a read or ingest key: 403.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import auth

REQUESTS = Counter("usertrail_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "usertrail_http_request_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: bounded labels)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route_of(scope)
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope.get("method", "GET")
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
            REQUESTS.labels(route, method, str(status)).inc()


def _route_of(scope: Scope) -> str:
    app: Any = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        if isinstance(route, Route) and route.matches(scope)[0] == Match.FULL:
            return route.path
    return "unmatched"


class OneEnvironment:
    """The registry's samples labelled with one environment: what its admin key may read."""

    def __init__(self, environment_id: int):
        self.environment = str(environment_id)

    def collect(self) -> Iterator[Metric]:
        for family in REGISTRY.collect():
            samples = [s for s in family.samples if s.labels.get("environment") == self.environment]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this process's metrics, as far as the key may see."""
    settings = request.app.state.usertrail.settings
    try:
        if settings.dev or _is_metrics_key(request, settings.metrics_key):
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
        principal = await auth.authenticate(request)
        if not principal.may("admin"):
            raise auth.Refused(
                403,
                "FORBIDDEN",
                f"/metrics needs the operator's USERTRAIL_METRICS_KEY or an API key of scope "
                f"admin; this key has scope {principal.scope}",
            )
    except auth.Refused as refusal:
        return refusal.response()
    exposition = generate_latest(OneEnvironment(principal.environment_id))  # type: ignore[arg-type]
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


def _is_metrics_key(request: Request, metrics_key: str | None) -> bool:
    if not metrics_key:
        return False
    sent = auth.bearer_key(request.headers)
    return sent is not None and secrets.compare_digest(sent.encode(), metrics_key.encode())


routes = [Route("/metrics", metrics, methods=["GET"])]
