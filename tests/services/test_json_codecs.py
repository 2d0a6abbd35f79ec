"""models/db.json_codecs decodes json and jsonb exactly as SQLAlchemy's codecs did."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from sqlalchemy import JSON, Column, MetaData, Table, event, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB

from models.db import Database, _decode_json, _decode_jsonb, _encode_jsonb, json_codecs

# As the database sends them: jsonb normalises spacing, key order and numbers on input.
TEXTS = [
    "null",
    "true",
    "false",
    "0",
    "-0",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "123456789012345678901234567890",
    "1.5",
    "1.0000000000000000000001",
    "0.000001",
    "1e-7",
    "1.7976931348623157e308",
    '""',
    '"plain"',
    '"é — 😀 \\u0000 \\" \\\\ / \\n \\t \\u001f \\u007f"',
    '"ſ 𝄞 日本語"',
    "[]",
    "{}",
    '[1, "two", 3.5, null, true, [[]], {"a": {}}]',
    '{"a": 1, "b": [1, 2, {"c": "d"}], "é": "😀", "path": "/pricing", "": null}',
    '{"k": ' * 100 + "1" + "}" * 100,
]


def _sqlalchemy_jsonb(value: bytes) -> Any:
    """What SQLAlchemy's asyncpg dialect decodes jsonb with (json_deserializer=orjson.loads)."""
    return orjson.loads(value[1:].decode())


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("raw", TEXTS)
def test_decoders_read_what_sqlalchemy_read(raw: str) -> None:
    sent = _encode_jsonb(raw)
    assert sent == b"\x01" + raw.encode()
    assert _same(_decode_jsonb(sent), _sqlalchemy_jsonb(sent))
    assert _same(_decode_json(raw.encode()), orjson.loads(raw))


@pytest.mark.parametrize("raw", ["1e400", '{"a": 1,}', '"\\ud800"'])
def test_decoders_refuse_what_sqlalchemy_refused(raw: str) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        _sqlalchemy_jsonb(_encode_jsonb(raw))
    with pytest.raises(orjson.JSONDecodeError):
        _decode_jsonb(_encode_jsonb(raw))


VALUES: list[Any] = [
    None,
    {"path": "/pricing", "target_text": "Add to cart", "n": 3, "f": 2.5},
    {"unicode": "é — 😀 日本語", "escapes": 'a"b\\c\n\t\u001f\u007f', "nested": [{"x": []}]},
    {"big": 9223372036854775807, "small": -9223372036854775808, "exact": 9007199254740993},
    {"floats": [0.1, 1e-7, 1e300, -0.0, 123456.789]},
    [1, "two", None, True, False, {}],
    "a string",
    12,
]


async def _read_back(url: str, *, codecs: bool) -> list[Any]:
    db = Database(url)
    if not codecs:  # as SQLAlchemy alone decodes
        event.remove(db.engine.sync_engine, "connect", json_codecs)
    try:
        async with db.read() as conn:
            found = []
            for value in VALUES:
                as_text = json.dumps(value)
                row = (
                    await conn.execute(
                        text("SELECT CAST(:v AS jsonb) AS b, CAST(:v AS json) AS j"), {"v": as_text}
                    )
                ).one()
                found.append((row.b, row.j))
            numeric = await conn.execute(
                text("SELECT CAST('123456789012345678901234567890.5' AS jsonb) AS b")
            )
            found.append(numeric.scalar_one())
            return found
    finally:
        await db.dispose()


async def test_postgresql_reads_the_same_values(postgres_url: str) -> None:
    before = await _read_back(postgres_url, codecs=False)
    after = await _read_back(postgres_url, codecs=True)
    assert _same(after, before)
    assert after[0] == (None, None) and after[3][0]["exact"] == 9007199254740993


async def _written_back(url: str, *, codecs: bool) -> list[Any]:
    db = Database(url)
    if not codecs:  # as SQLAlchemy alone decodes
        event.remove(db.engine.sync_engine, "connect", json_codecs)
    docs = Table("docs", MetaData(), Column("b", JSONB), Column("j", JSON))
    try:
        async with db.read() as conn:
            await conn.execute(text("CREATE TEMP TABLE docs (b jsonb, j json)"))
            await conn.execute(insert(docs), [{"b": v, "j": v} for v in VALUES[1:]])
            return [tuple(row) for row in await conn.execute(select(docs.c.b, docs.c.j))]
    finally:
        await db.dispose()


async def test_postgresql_writes_the_same_values(postgres_url: str) -> None:
    before = await _written_back(postgres_url, codecs=False)
    after = await _written_back(postgres_url, codecs=True)
    assert _same(after, before) and len(after) == len(VALUES) - 1
    assert [j for _, j in after] == VALUES[1:]  # json keeps the text as written
