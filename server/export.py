"""Export routes: `/export/{users,sessions,events}.{csv,ndjson}` for a filter sent as JSON.

The `filter` query parameter is the GraphQL input shape (UserFilter, SessionFilter; for
events `{userId | identity, type, time}`), validated by services/filter_json.py. Outside dev
mode the request needs an API key with read scope (as GraphQL does; server/auth.py). Rows
stream as the pages are read (services/export.py): memory stays flat whatever the size,
and a client that leaves ends the stream and the reading. NDJSON ends with
`{"rowCount": N}`, so a reader can tell a finished export from a cut one.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from server.auth import Refused, authenticate
from server.http_errors import JSON_REFUSED, HttpProblem, JSONBody, parse_json
from services import export, filter_json
from services.errors import Unavailable, UsertrailError

log = logging.getLogger(__name__)

Build = Callable[[Any, Any, Any], Awaitable[export.Export]]
FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# Rows joined into one chunk before it is sent: fewer, larger writes to the socket.
ROWS_PER_CHUNK = 200


async def _users(db: Any, environment_id: int, sent: Any) -> export.Export:
    return await export.users(db, environment_id, filter_json.user_filter(sent))


async def _sessions(db: Any, environment_id: int, sent: Any) -> export.Export:
    wanted, user_id = filter_json.session_filter(sent)
    return await export.sessions(db, environment_id, wanted, user_id)


async def _events(db: Any, environment_id: int, sent: Any) -> export.Export:
    return await export.events(db, environment_id, filter_json.event_filter(sent))


KINDS: dict[str, Build] = {"users": _users, "sessions": _sessions, "events": _events}


def _sent_filter(request: Request) -> Any:
    text = request.query_params.get("filter")
    if text is None or not text.strip():
        return None
    try:
        return parse_json(text)
    except JSON_REFUSED:
        raise UsertrailError(
            "the filter is not valid JSON", field="filter", code="INVALID_FILTER"
        ) from None


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


async def _csv(
    columns: tuple[str, ...], rows: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes doubled
    writer.writerow(columns)
    count = 0
    async for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in columns])
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def _ndjson(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    chunk: list[bytes] = []
    count = 0
    async for row in rows:
        chunk.append(orjson.dumps(row))
        count += 1
        if len(chunk) == ROWS_PER_CHUNK:
            yield b"\n".join(chunk) + b"\n"
            chunk = []
    chunk.append(orjson.dumps({"rowCount": count}))
    yield b"\n".join(chunk) + b"\n"


async def _logged(body: AsyncIterator[bytes], path: str) -> AsyncIterator[bytes]:
    """`body`, ending quietly on an outage mid-stream (the status is sent already; NDJSON
    then lacks its rowCount line)."""
    try:
        async for chunk in body:
            yield chunk
    except Unavailable:
        log.warning("export %s cut short: the database became unavailable", path)


async def export_route(request: Request) -> Response:
    """Stream the rows of one export as CSV or NDJSON."""
    kind = request.path_params["kind"]
    fmt = request.path_params["format"]
    if kind not in KINDS or fmt not in FORMATS:
        return JSONBody(
            {
                "code": "NOT_FOUND",
                "message": "exports: /export/{users,sessions,events}.{csv,ndjson}",
            },
            status_code=404,
        )
    try:
        principal = await authenticate(request)
    except Refused as refused:
        return refused.response()
    if not principal.may("read"):
        return HttpProblem(
            403,
            "FORBIDDEN",
            f"exports need an API key with scope read (or admin); this key has scope "
            f"{principal.scope}",
            requiredScope="read",
        ).response()
    state = request.app.state.usertrail
    try:
        found = await KINDS[kind](state.db, principal.environment_id, _sent_filter(request))
    except UsertrailError as error:
        return HttpProblem(400, error.code, error.message, field=error.field).response()
    except Unavailable as outage:
        retry = str(getattr(outage, "retry_after", 1))
        return HttpProblem(
            503,
            "UNAVAILABLE",
            "the database is unavailable; retry later",
            headers={"Retry-After": retry},
        ).response()
    body = _csv(found.columns, found.rows) if fmt == "csv" else _ndjson(found.rows)
    filename = f"usertrail-{kind}.{fmt}"
    return StreamingResponse(
        _logged(body, request.url.path),
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


routes = [Route("/export/{kind}.{format}", export_route, methods=["GET"])]
