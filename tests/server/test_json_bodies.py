"""JSON bodies: GraphQL's is read by msgspec, and what msgspec refuses by the standard library's
json, so that every body is decoded as `json.loads` would (the fast path changes no answer);
the Heap and Segment routes read theirs strictly. Integers past 64 bits stay integers (orjson
reads them as floats), so that they are refused as too large instead of stored rounded."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import RunningServer
from tests.support import TRACK_BATCH

EVENT = {
    "event": "signup",
    "userId": "7",
    "source": "WEB",
    "timestamp": "2026-03-02T10:00:00Z",
}


async def _post(server: RunningServer, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post(
            "/graphql",
            content=body,
            headers={"content-type": "application/json", "accept": "application/json"},
        )


def _body(properties: str) -> str:
    event = json.dumps(EVENT)[:-1] + f', "properties": {properties}}}'
    return f'{{"query": {json.dumps(TRACK_BATCH)}, "variables": {{"events": [{event}]}}}}'


async def test_a_plain_body_is_read(server: RunningServer) -> None:
    answer = await _post(server, _body('{"plan": "pro"}').encode())
    assert answer.status_code == 200
    assert answer.json()["data"]["trackBatch"]["accepted"] == 1


@pytest.mark.parametrize(
    ("name", "properties"),
    [
        ("NaN", '{"n": NaN}'),
        ("a lone surrogate", '{"s": "\\ud800"}'),
    ],
)
async def test_what_orjson_refuses_is_answered_as_json_reads_it(
    server: RunningServer, name: str, properties: str
) -> None:
    """orjson refuses these bodies; `json` reads them, so GraphQL answers (200, with data), not
    a 400 for JSON that is not JSON."""
    answer = await _post(server, _body(properties).encode())
    assert answer.status_code == 200, answer.text
    payload = answer.json()["data"]["trackBatch"]
    assert payload["accepted"] + len(payload["errors"]) == 1


@pytest.mark.parametrize("number", ["123456789012345678901234567890", "-9223372036854775809"])
async def test_an_integer_past_64_bits_is_refused_not_rounded(
    server: RunningServer, number: str
) -> None:
    answer = await _post(server, _body(f'{{"n": {number}}}').encode())
    payload = answer.json()["data"]["trackBatch"]
    assert payload["accepted"] == 0
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("INVALID_PROPERTY_VALUE", "properties.n")
    ]


async def test_heap_refuses_an_integer_past_64_bits_and_stores_the_rest(
    server: RunningServer,
) -> None:
    events = [
        {"identity": "a@x.io", "event": "Paid", "properties": {"cents": 10**30}},
        {"identity": "b@x.io", "event": "Paid", "properties": {"cents": 250}},
    ]
    body = json.dumps({"app_id": "default", "events": events}).encode()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post(
            "/api/track", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert "events[0].properties.cents" in answer.text
    assert answer.json()["accepted"] == 1


async def test_a_utf16_body_is_read(server: RunningServer) -> None:
    answer = await _post(server, _body('{"plan": "pro"}').encode("utf-16"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["trackBatch"]["accepted"] == 1


async def test_bodies_that_are_not_json_are_400(server: RunningServer) -> None:
    deep = b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * 100_000 + b"]" * 100_000
    latin1 = _body('{"city": "Zürich"}').encode("latin-1")
    for body in (deep + b"}}", latin1, b'{"query": "{ __typename }"'):
        answer = await _post(server, body)
        assert answer.status_code == 400, answer.text
        assert "parse request body as JSON" in answer.text
