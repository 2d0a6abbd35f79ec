"""Who a Segment request writes for: its write key, an API key of scope ingest or admin.

SDKs send the write key as HTTP Basic auth (`writeKey:`), some in the body (`writeKey`). The
key names the environment. Without a usable key the answer is 401; a key of scope read is
refused with 403 (the app state's `environment_for_write_key`, server/app.py).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request

from server.http_errors import HttpProblem


def basic_auth_key(request: Request) -> str | None:
    """The write key of `Authorization: Basic base64(writeKey:)`, if the request has one."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise HttpProblem(401, "INVALID_AUTHORIZATION", "use HTTP Basic auth with writeKey:")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise HttpProblem(
            401, "INVALID_AUTHORIZATION", "the Basic credentials are not base64"
        ) from None
    user, _, password = decoded.partition(":")
    return user or password or None


async def write_key_environment(state: Any, write_key: Any) -> int:
    """The environment a write key names; HTTP 401 without an active key."""
    if not isinstance(write_key, str) or not write_key:
        raise HttpProblem(
            401,
            "MISSING_WRITE_KEY",
            "send the write key as HTTP Basic auth (writeKey:) or as writeKey in the body",
        )
    environment_id = await state.environment_for_write_key(write_key)
    if environment_id is None:
        raise HttpProblem(
            401,
            "UNKNOWN_WRITE_KEY",
            "the write key is not an active API key: use an ingest key made by "
            "`usertrail key create --scope ingest`",
        )
    return int(environment_id)
