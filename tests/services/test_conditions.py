"""Property conditions (SPEC §5a): SQL on SQLite, SQL on PostgreSQL and Python agree.

The differential part runs every operator with condition values of every kind against a
table of stored values of every kind, and asks each form which values match. The oracle
part holds a representative subset to results written by hand from SPEC §5a's table.
"""

from __future__ import annotations

import math
import operator
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select, text

from models.base import Document
from models.db import Database
from models.property_values import fold
from services.condition_sql import (
    IntegerColumn,
    TextColumn,
    condition_sql,
    double_edge,
    json_operand,
)
from services.conditions import COMPARISONS, PropertyCondition, predicate, validate
from services.errors import InvalidInput
from tests.conftest import PostgresTemplates, _sqlite_copy

ABSENT = object()
STORED: list[Any] = [
    ABSENT, "49", 49, " 49 ", 49.0, 50, 49.5, "abc", "ABC", True, False, "", "  ", "049",
    "4.9e1", "+49", "49.", ".5", "5.", "1e5", "1E+05", "1e99999", "0x10", "١٢", "Ⅻ", "-",
    "e5", "true", "TRUE", "False", "tRuE", 0, -0.0, -1, 0.1, 1e20, 1.5e-7, 123456.789,
    9007199254740992, 9007199254740993, 2**63 - 1, -(2**63), "9007199254740993",
    "9007199254740993.0", "0.10000000000000000001", "100000000000000000000",
    "İSTANBUL", "i̇stanbul", "istanbul", "ISTANBUL", "ΣΟΦΊΑ", "σοφία", "ΟΔΟΣ", "οδος", "οδοσ",
    "Straße", "STRASSE", "ПРИВЕТ", "привет", "Ёлка", "ёлка", "Éclair", "éCLAIR", "ǅ", "ΐ",
    "a*b", "axxb", "a%b_c", "a[b]?", "line\nbreak", "tab\there", "49 ", "\t49\n",
]  # fmt: skip

CONDITIONS: list[tuple[str, Any]] = [
    *[
        (op, value)
        for op in ("EQUALS", "NOT_EQUALS")
        for value in (
            "49", 49, 49.0, 49.5, "abc", "", True, False, "true", "TRUE", 9007199254740992,
            9007199254740993, 2**64, "İSTANBUL", 0.1, 1e20, "100000000000000000000", 0, " 49 ",
            "4.9e1", "0.1", "1.5e-7", "0.00000015", "123456.789", "-0", "ǅ",
        )
    ],
    *[
        (op, value)
        for op in ("IN", "NOT_IN")
        for value in (
            ["49", 50], [49, "abc"], [True, "x"], ["true"], [0.1, 9007199254740993],
            [False, 0, "0"], ["İSTANBUL", "istanbul"], [49.5, "49.5", "1E+05"],
        )
    ],
    *[
        (op, value)
        for op in ("CONTAINS", "NOT_CONTAINS")
        for value in (
            "i̇stanbul", "İSTANBUL", "istanbul", "ISTANBUL", "σοφ", "ΣΟΦ", "ΟΔΟΣ", "οδος", "ς",
            "ЁЛ", "привет", "STRASSE", "straße", "ÉCLAIR", "ǆ", "4", "", "%", "_", "a*b",
            "TRU", "\n", "e+", "9",
        )
    ],
    *[
        (op, value)
        for op in ("STARTS_WITH", "ENDS_WITH")
        for value in ("4", "49", " ", "a%", "İ", "i", "", "ab", "Σ", "9", "e-7", "\n", "?]")
    ],
    *[
        ("MATCHES", value)
        for value in (
            "4*", "*9", "49", "*", "", "a*b", "a%b_c", "a[b]?", "*\n*", "?", "İ*", "*ΣΟΦ*",
            "*.*", "a_b*", "*[*", "**",
        )
    ],
    *[
        (op, value)
        for op in ("GREATER_THAN", "GREATER_OR_EQUAL", "LESS_THAN", "LESS_OR_EQUAL")
        for value in (
            49, 49.0, "49", " 49 ", 49.5, 9007199254740992, "9007199254740992.5", 0.1, "0.1",
            "0.10000000000000000001", -1, "1e5", 2**64, -(2**64), "1e9999", "-1e-9999", 0,
        )
    ],
    ("IS_SET", None),
    ("IS_NOT_SET", None),
]  # fmt: skip

# Names of every kind: each is a literal key, never JSON path syntax.
NAMES = [
    "amount", 'we"ird', "back\\slash", "tab\there", "new\nline", "dot.ted", "br[0]", "$root",
    "$", "quote's", "ünï ☃", "a\x7fb", "\x01", " ", '$."x"',
]  # fmt: skip
DECOYS = {"dot": "x", "ted": "x", "br": ["x"], "root": "x", "x": "x"}

probes = Table(
    "condition_probes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("doc", Document),
    Column("txt", String),
    Column("num", BigInteger),
)


class Probe:
    """A database holding one row per stored value, and the SQL that asks it."""

    def __init__(self, db: Database):
        self.db = db

    async def load(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.run_sync(probes.metadata.create_all)
            rows = []
            for index, value in enumerate(STORED):
                doc: dict[str, Any] = {"other": "49", **DECOYS}
                if value is not ABSENT:
                    doc |= {name: value for name in NAMES}
                rows.append(
                    {
                        "id": index,
                        "doc": doc,
                        "txt": value if isinstance(value, str) else None,
                        "num": value if type(value) is int and abs(value) < 2**63 else None,
                    }
                )
            await conn.execute(probes.insert(), rows)

    async def matching(self, condition: PropertyCondition, column: str = "doc") -> set[int]:
        dialect = self.db.dialect
        if column == "doc":
            operand = json_operand(probes.c.doc, condition.property, dialect)
        elif column == "txt":
            operand = TextColumn(probes.c.txt, dialect)
        else:
            operand = IntegerColumn(probes.c.num, dialect)
        async with self.db.engine.connect() as conn:
            found = await conn.execute(select(probes.c.id).where(condition_sql(condition, operand)))
            return {row.id for row in found}


@pytest.fixture(scope="module")
async def sqlite_probe(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Probe]:
    db = Database(await _sqlite_copy(sqlite_template, tmp_path_factory.mktemp("probe")))
    probe = Probe(db)
    await probe.load()
    yield probe
    await db.dispose()


@pytest.fixture(scope="module")
async def postgres_probe(pg_templates: PostgresTemplates | None) -> AsyncIterator[Probe | None]:
    if pg_templates is None:
        yield None
        return
    db = Database(await pg_templates.fresh())
    probe = Probe(db)
    await probe.load()
    yield probe
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def probe(
    request: pytest.FixtureRequest, sqlite_probe: Probe, postgres_probe: Probe | None
) -> Probe:
    if request.param == "sqlite":
        return sqlite_probe
    if postgres_probe is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    return postgres_probe


def in_python(condition: PropertyCondition) -> set[int]:
    test = predicate(condition)
    return {
        index
        for index, value in enumerate(STORED)
        if test({} if value is ABSENT else {condition.property: value})
    }


def label(values: set[int]) -> list[str]:
    return sorted(repr(STORED[i]) for i in values)


@pytest.mark.parametrize(("op", "value"), CONDITIONS, ids=[f"{o}-{v!r}" for o, v in CONDITIONS])
async def test_sql_and_python_agree(probe: Probe, op: str, value: Any) -> None:
    condition = validate(PropertyCondition("amount", op, value), "c")
    expected = in_python(condition)
    assert label(await probe.matching(condition)) == label(expected)


@pytest.mark.parametrize("name", NAMES, ids=[repr(n) for n in NAMES])
async def test_property_names_are_literal(probe: Probe, name: str) -> None:
    for op, value in CONDITIONS[::7] + [("IS_SET", None), ("IS_NOT_SET", None)]:
        condition = validate(PropertyCondition(name, op, value), "c")
        assert label(await probe.matching(condition)) == label(in_python(condition)), (op, value)


@pytest.mark.parametrize(("op", "value"), CONDITIONS, ids=[f"{o}-{v!r}" for o, v in CONDITIONS])
async def test_plain_columns_agree(probe: Probe, op: str, value: Any) -> None:
    condition = validate(PropertyCondition("x", op, value), "c")
    test = predicate(condition)
    texts = {i for i, v in enumerate(STORED) if isinstance(v, str) and test({"x": v})} | {
        i for i, v in enumerate(STORED) if not isinstance(v, str) and test({})
    }
    assert label(await probe.matching(condition, "txt")) == label(texts)
    digits = {  # userId: a string of digits, stored as an integer column
        i
        for i, v in enumerate(STORED)
        if test({"x": str(v)} if type(v) is int and abs(v) < 2**63 else {})
    }
    assert label(await probe.matching(condition, "num")) == label(digits)


# Written by hand from SPEC §5a, independently of the code: which stored values match.
ORACLE: list[tuple[str, Any, list[Any]]] = [
    ("LESS_THAN", 50, ["49", 49, " 49 ", 49.0, 49.5, "049", "4.9e1", "+49", "49.", ".5", "5.",
                       "49 ", "\t49\n", 0, -0.0, -1, 0.1, 1.5e-7, "0.10000000000000000001",
                       -(2**63)]),
    ("EQUALS", "49", ["49", 49, 49.0]),
    ("EQUALS", 49, ["49", 49, " 49 ", 49.0, "049", "4.9e1", "+49", "49.", "49 ", "\t49\n"]),
    ("EQUALS", True, [True, "true", "TRUE", "tRuE"]),
    ("EQUALS", "true", [True, "true"]),
    ("EQUALS", 9007199254740992, [9007199254740992]),
    ("EQUALS", 9007199254740993, [9007199254740993, "9007199254740993", "9007199254740993.0"]),
    ("EQUALS", 0.1, [0.1]),
    ("EQUALS", "100000000000000000000", [1e20, "100000000000000000000"]),
    ("IN", ["49", 50], ["49", 49, 49.0, 50]),
    ("IN", [True, "x"], [True, "true", "TRUE", "tRuE"]),
    ("CONTAINS", "i̇stanbul", ["İSTANBUL", "i̇stanbul"]),
    ("CONTAINS", "istanbul", ["istanbul", "ISTANBUL"]),
    ("CONTAINS", "ΣΟΦ", ["ΣΟΦΊΑ", "σοφία"]),
    ("CONTAINS", "ΟΔΟΣ", ["ΟΔΟΣ", "οδος", "οδοσ"]),
    ("CONTAINS", "ЁЛ", ["Ёлка", "ёлка"]),
    ("CONTAINS", "ÉCLAIR", ["Éclair", "éCLAIR"]),
    ("CONTAINS", "e+", ["1E+05"]),
    ("STARTS_WITH", "İ", ["İSTANBUL"]),
    ("ENDS_WITH", "e-7", []),
    ("MATCHES", "a*b", ["a*b", "axxb"]),
    ("MATCHES", "a[b]?", ["a[b]?"]),
    ("MATCHES", "a_b*", []),
    ("MATCHES", "*\n*", ["line\nbreak", "\t49\n"]),
    ("GREATER_THAN", "9007199254740992.5", [9007199254740993, 2**63 - 1, "9007199254740993",
                                             "9007199254740993.0", 1e20, "100000000000000000000"]),
    ("GREATER_OR_EQUAL", 2**64, [1e20, "100000000000000000000"]),
    ("IS_SET", None, STORED[1:]),
]  # fmt: skip


def _indexes(values: list[Any]) -> set[int]:
    return {i for i, v in enumerate(STORED) if any(type(v) is type(w) and v == w for w in values)}


@pytest.mark.parametrize(
    ("op", "value", "expected"), ORACLE, ids=[f"{o}-{v!r}" for o, v, _ in ORACLE]
)
async def test_the_table_of_spec_5a(probe: Probe, op: str, value: Any, expected: list[Any]) -> None:
    condition = validate(PropertyCondition("amount", op, value), "c")
    wanted = label(_indexes(expected))
    assert label(in_python(condition)) == wanted
    assert label(await probe.matching(condition)) == wanted
    negation = {"EQUALS": "NOT_EQUALS", "IN": "NOT_IN", "CONTAINS": "NOT_CONTAINS"}.get(op)
    if negation:  # the negation: exactly the others, absent included
        negative = validate(PropertyCondition("amount", negation, value), "c")
        others = set(range(len(STORED))) - _indexes(expected)
        assert label(await probe.matching(negative)) == label(others)


scalars = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.from_regex(r"[ \t]?[+-]?[0-9]{1,3}(\.[0-9]{0,2})?([eE][+-]?[0-9])?[ \t]?", fullmatch=True),
)
OPS = ["EQUALS", "NOT_EQUALS", "IN", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES",
       "GREATER_THAN", "LESS_OR_EQUAL"]  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(op=st.sampled_from(OPS), value=scalars)
async def test_generated_conditions_agree(probe: Probe, op: str, value: Any) -> None:
    try:
        condition = validate(PropertyCondition("amount", op, [value] if op == "IN" else value), "c")
    except InvalidInput:
        return
    assert label(await probe.matching(condition)) == label(in_python(condition))


@pytest.mark.parametrize(
    ("condition", "field", "code"),
    [
        (PropertyCondition("", "IS_SET"), "c.property", "INVALID_PROPERTY_NAME"),
        (PropertyCondition("a", "LIKE", "b"), "c.op", "INVALID_OPERATOR"),
        (PropertyCondition("a", "EQUALS"), "c.value", "MISSING_VALUE"),
        (PropertyCondition("a", "IN", []), "c.value", "MISSING_VALUE"),
        (PropertyCondition("a", "IN", "x"), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "GREATER_THAN", "many"), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "CONTAINS", 4), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "EQUALS", math.inf), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "EQUALS", {"n": 1}), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "IS_SET", 1), "c.value", "INVALID_VALUE"),
        (PropertyCondition("a", "EQUALS", "x\x00"), "c.value", "INVALID_VALUE"),
    ],
)
def test_one_validation_with_one_set_of_codes(
    condition: PropertyCondition, field: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        validate(condition, "c")
    assert (error.value.field, error.value.code) == (field, code)


# Latin (with Extended-A/B and Additional), IPA, Greek (with Extended) and Cyrillic letters.
LETTER_BLOCKS = [(0x41, 0x24F), (0x370, 0x52F), (0x1E00, 0x1FFF)]


async def test_postgres_folds_every_latin_greek_and_cyrillic_letter_as_python(
    postgres_probe: Probe | None,
) -> None:
    if postgres_probe is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    letters = [chr(c) for low, high in LETTER_BLOCKS for c in range(low, high + 1)]
    letters = [c for c in letters if c.isprintable()]
    words = letters + [c + "Σ" for c in letters if c.isalpha()]  # final sigma in every context
    async with postgres_probe.db.engine.connect() as conn:
        folded = await conn.execute(
            text(
                "SELECT replace(lower(w COLLATE \"und-x-icu\"), 'ς', 'σ') "
                "FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS t(w, n) ORDER BY n"
            ),
            {"words": words},
        )
        differ = [(w, f) for w, (f,) in zip(words, folded, strict=True) if fold(w) != f]
    assert differ == []


@settings(max_examples=2000, deadline=None)
@given(
    stored=st.floats(allow_nan=False, allow_infinity=False),
    bound=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f))),
        st.decimals(allow_nan=False, allow_infinity=False),
    ),
    op=st.sampled_from(
        ["EQUALS", "GREATER_THAN", "GREATER_OR_EQUAL", "LESS_THAN", "LESS_OR_EQUAL"]
    ),
)
def test_double_edges_compare_like_shortest_decimals(
    stored: float, bound: Decimal, op: str
) -> None:
    """SQLite compares stored doubles natively against an edge double: the same answer."""
    compare = {"EQUALS": operator.eq, **COMPARISONS}
    wanted = compare[op](Decimal(repr(stored)), bound)
    edge = double_edge(op, bound)
    assert (edge if isinstance(edge, bool) else compare[edge[0]](stored, edge[1])) == wanted
