"""Structured logs: one JSON object per line with the request id of the request."""

from __future__ import annotations

import logging

import orjson

from server import request_ids
from server.logs import JSONFormatter


def test_a_log_line_is_json_with_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord(
        "usertrail.graphql", logging.WARNING, __file__, 1, "request %s failed", ("abc",), None
    )
    record.route = "/graphql"
    token = request_ids.current.set("req-42")
    try:
        line = JSONFormatter().format(record)
    finally:
        request_ids.current.reset(token)
    entry = orjson.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "usertrail.graphql"
    assert entry["message"] == "request abc failed"
    assert entry["request_id"] == "req-42" and entry["route"] == "/graphql"
    assert "\n" not in line


def test_exceptions_are_kept_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = orjson.loads(JSONFormatter().format(record))
    assert "ValueError: boom" in entry["exception"] and "request_id" not in entry
