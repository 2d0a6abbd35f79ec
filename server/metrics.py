"""Prometheus metrics: an ASGI middleware timing every request, and the /metrics route."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
