"""Request ids: one per HTTP request, in the `X-Request-Id` answer header and in its log lines.

A well-formed `X-Request-Id` sent by the client (or a proxy) is kept, so that one id follows
a request through every hop; otherwise a random one is made. The outermost middleware also
answers, as JSON carrying the id, any exception that escaped the routes, so that no stack
trace reaches a client and every such failure is logged with its id.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http_errors import JSONBody

HEADER = "X-Request-Id"
WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
current: ContextVar[str | None] = ContextVar("request_id", default=None)
log = logging.getLogger(__name__)


def new_id() -> str:
    return secrets.token_hex(8)


def id_of(scope: Scope) -> str | None:
    """The request id given to this request (None outside RequestIds)."""
    return scope.get("state", {}).get("request_id")


class RequestIds:
    """ASGI middleware: a request id for every HTTP request, and JSON for escaped exceptions."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(HEADER, "")
        request_id = offered if WELL_FORMED.fullmatch(offered) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = current.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "request %s: %s %s failed unexpectedly", request_id, scope["method"], scope["path"]
            )
            if started:
                raise
            body = {
                "success": False,
                "code": "INTERNAL",
                "message": "internal error; retry later",
                "errors": [
                    {
                        "message": "internal error; retry later",
                        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                    }
                ],
                "requestId": request_id,
            }
            await JSONBody(body, status_code=500)(scope, receive, send_with_id)
        finally:
            current.reset(token)


class WithRequestId(logging.Filter):
    """Adds the current request id to the records of a logger that does not name it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current.get()
        record.request_id = request_id
        if request_id is not None and isinstance(record.msg, str):
            record.msg = f"request {request_id}: {record.msg}"
        return True


def tag_logs(*logger_names: str) -> None:
    """Prefix the records of these loggers with the request id (once per logger)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithRequestId) for f in logger.filters):
            logger.addFilter(WithRequestId())
