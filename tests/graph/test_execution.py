"""graph/execution.py answers exactly as Strawberry's own executor: data, errors, their order.

Each query runs twice on the same types, with FastExecutor and with Strawberry's default
executor, and the results must be equal: values, error messages, paths and locations. The
types cover the inline paths (attribute reads, `self`-only methods, direct resolver calls,
leaves, objects, lists) and every value that must leave them (nulls in non-null positions,
exceptions raised or returned, awaitables, abstract types, iterables that are not lists).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NewType

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig

from graph.execution import FastExecutor
from graph.lookahead import selected_arguments
from server.graphql_app import encode_json
from services.clock import to_datetime
from tests.support import fast_paths_only

pytestmark = fast_paths_only


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


Odd = NewType("Odd", int)
# A scalar whose serializer refuses even numbers: a leaf that fails to complete.
SCALARS = {
    Odd: strawberry.scalar(
        name="Odd", serialize=lambda v: v if v % 2 else None, parse_value=lambda v: v
    )
}


@strawberry.interface
class Named:
    name: str


@strawberry.input
class Range:
    low: int = 0
    high: int = 10


class Refuse(BasePermission):
    message = "refused"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return bool(getattr(source, "allowed", False))


def _shout(self: Item) -> str:
    return self.name.upper()


def _broken(self: Item) -> str:
    raise ValueError(f"broken {self.name}")


@strawberry.type
class Item(Named):
    name: str
    count: int | None
    must: int
    score: float = 1.5
    when: datetime = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    color: Color = Color.RED
    data: JSON = strawberry.field(default_factory=lambda: {"a": [1, "é", None]})
    odd: Odd = 3  # type: ignore[valid-type]
    price: Decimal | None = None
    shout: str = strawberry.field(resolver=_shout)
    broken: str | None = strawberry.field(resolver=_broken)
    broken_must: str = strawberry.field(resolver=_broken)
    later: int | None = None  # may hold an awaitable
    failure: strawberry.Private[Any] = None  # an exception returned, not raised
    allowed: strawberry.Private[bool] = True

    @strawberry.field
    def secret(self) -> str:
        return "s"

    @strawberry.field(permission_classes=[Refuse])
    def guarded(self) -> str:
        return "g"

    @strawberry.field
    def as_failure(self) -> int | None:
        return self.failure  # type: ignore[no-any-return]

    @strawberry.field
    async def slow(self, times: int = 2) -> str:
        await asyncio.sleep(0)
        return self.name * times

    @strawberry.field
    async def slow_fail(self) -> str | None:
        await asyncio.sleep(0)
        raise RuntimeError("slow failure")

    @strawberry.field
    def scaled(self, by: int = 2, label: str | None = None, color: Color | None = None) -> str:
        return f"{label or ''}{self.must * by}{color.value if color else ''}"

    @strawberry.field
    def within(self, range: Range | None = None, bounds: list[int] | None = None) -> bool:
        low, high = (range.low, range.high) if range else (0, 10)
        return low <= self.must <= high and bounds != [0]


@strawberry.type
class Edge:
    node: Item


@strawberry.type
class MaybeEdge:
    node: Item | None


async def _item() -> Item:
    await asyncio.sleep(0)
    return _items()[2]


@strawberry.type
class Other(Named):
    name: str
    size: int = 7


@dataclass
class Box:
    """Not a Strawberry object: `is_type_of` of Item refuses it."""

    name: str = "box"


def _items() -> list[Item]:
    return [
        Item(name="a", count=1, must=1),
        Item(name="b", count=None, must=2, later=None),
        Item(name="c", count=3, must=3, price=Decimal("1.10"), color=Color.BLUE),
    ]


async def _seven() -> int:
    await asyncio.sleep(0)
    return 7


def _generated() -> Iterator[Item]:
    yield from _items()


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return _items()

    @strawberry.field
    def item(self) -> Item:
        return _items()[0]

    @strawberry.field
    def edges(self) -> list[Edge]:
        return [Edge(node=item) for item in _items()]

    @strawberry.field
    def broken_edges(self) -> list[Edge] | None:
        return [Edge(node=_items()[0]), Edge(node=None)]  # type: ignore[arg-type]

    @strawberry.field
    def maybe_edges(self) -> list[MaybeEdge]:
        return [MaybeEdge(node=None), MaybeEdge(node=Box()), MaybeEdge(node=_items()[1])]  # type: ignore[arg-type]

    @strawberry.field
    def awaiting_edges(self) -> list[Edge]:
        return [Edge(node=_items()[0]), Edge(node=_item())]  # type: ignore[arg-type]

    @strawberry.field
    def maybe_items(self) -> list[Item | None] | None:
        return [_items()[0], None]

    @strawberry.field
    def strict_items(self) -> list[Item]:
        return [_items()[0], None]  # type: ignore[list-item]

    @strawberry.field
    def generated(self) -> list[Item]:
        return _generated()  # type: ignore[return-value]

    @strawberry.field
    def matrix(self) -> list[list[int]]:
        return [[1, 2], [3]]

    @strawberry.field
    def numbers(self) -> list[int | None]:
        return [1, None, 3]

    @strawberry.field
    def strict_numbers(self) -> list[int]:
        return [1, None]  # type: ignore[list-item]

    @strawberry.field
    def tupled(self) -> list[str]:
        return ("x", "y")  # type: ignore[return-value]

    @strawberry.field
    def named(self) -> list[Named]:
        return [_items()[0], Other(name="o")]

    @strawberry.field
    def union(self) -> list[Item | Other]:
        return [_items()[1], Other(name="u")]

    @strawberry.field
    def impostor(self) -> Item | None:
        return Box()  # type: ignore[return-value]

    @strawberry.field
    def awaiting(self) -> Item:
        item = _items()[0]
        item.later = _seven()  # type: ignore[assignment]
        return item

    @strawberry.field
    def failing(self) -> Item:
        item = _items()[0]
        item.failure = ValueError("returned, not raised")
        return item

    @strawberry.field
    def bad_must(self) -> Item | None:
        return Item(name="x", count=1, must=None)  # type: ignore[arg-type]

    @strawberry.field
    def bad_odd(self) -> Item | None:
        return Item(name="x", count=1, must=1, odd=2)

    @strawberry.field
    def refused(self) -> Item | None:
        item = _items()[0]
        item.allowed = False
        return item


TYPES = [Item, Other, Edge, MaybeEdge]
CONFIG = StrawberryConfig(scalar_map=SCALARS)
FAST = strawberry.Schema(Query, types=TYPES, config=CONFIG, execution_context_class=FastExecutor)
PLAIN = strawberry.Schema(Query, types=TYPES, config=CONFIG)

ITEM = """name count must score when color data odd price shout broken secret
  slow scaled(by: 3, label: "x") within(range: {low: 1, high: 2}) __typename"""
QUERIES = [
    f"{{ items {{ {ITEM} }} }}",
    f"{{ item {{ {ITEM} ...on Item {{ alias: name }} }} }}",
    "{ items { brokenMust } }",
    "{ item { brokenMust name } items { name } }",
    "{ maybeItems { name must } }",
    "{ strictItems { name } }",
    "{ generated { name } }",
    "{ matrix numbers tupled }",
    "{ strictNumbers }",
    "{ named { name __typename ... on Item { must } ... on Other { size } } }",
    "{ union { __typename ... on Item { name } ... on Other { size } } }",
    "{ impostor { name } }",
    "{ awaiting { later name } }",
    "{ failing { failure: asFailure name } }",
    "{ badMust { name must } }",
    "{ badOdd { odd } }",
    "{ refused { name guarded } }",
    "{ items { slowFail name } }",
    "{ edges { node { name must } } }",
    "{ edges { node { slow brokenMust } } }",
    "{ brokenEdges { node { name } } }",
    "{ maybeEdges { node { name } } }",
    "{ awaitingEdges { node { name slow } } }",
    "{ items { scaled(color: BLUE) within(bounds: [0]) } }",
    "{ item { a: slow(times: 1) b: slow } }",
    "query($by: Int, $skip: Boolean!) { items { scaled(by: $by) name @skip(if: $skip) } }",
    "fragment F on Item { name count } { items { ...F must } item { ...F } }",
]


async def _run(schema: strawberry.Schema, query: str) -> Any:
    result = await schema.execute(query, variable_values={"by": 5, "skip": True})
    errors = [(e.message, e.path, e.locations) for e in result.errors or ()]
    return result.data, errors


@pytest.mark.parametrize("query", QUERIES)
async def test_fast_executor_answers_as_strawberry_does(query: str) -> None:
    assert await _run(FAST, query) == await _run(PLAIN, query)


async def test_the_cases_are_not_trivial() -> None:
    """The queries above do meet what they are about (nulls, errors, awaitables)."""
    data, errors = await _run(FAST, QUERIES[0])
    assert data["items"][2]["price"] == "1.10" and data["items"][1]["count"] is None
    assert [e[0] for e in errors] == ["broken a", "broken b", "broken c"]
    assert (await _run(FAST, "{ strictItems { name } }"))[0] is None
    assert (await _run(FAST, "{ awaiting { later } }"))[0] == {"awaiting": {"later": 7}}
    assert "Expected value of type" in (await _run(FAST, "{ impostor { name } }"))[1][0][0]


def test_to_datetime_is_fromtimestamp() -> None:
    """Time fields come from `to_datetime` (epoch + µs arithmetic): the same values as the
    standard library's conversion, and an error beyond years 1..9999."""
    for micros in (0, -1, 1_795_336_284_247_123, -62_135_596_800_000_000, 253_402_300_799_999_999):
        seconds, rest = divmod(micros, 1_000_000)
        expected = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)
        assert to_datetime(micros) == expected
        assert to_datetime(micros).isoformat() == expected.isoformat()
    for beyond in (253_402_300_800_000_000, -62_135_596_800_000_001, 10**30):
        with pytest.raises(OverflowError):
            to_datetime(beyond)


@pytest.mark.parametrize(
    "value",
    [
        {"ascii": "plain", "n": [1, -2, 3.5, 0.1, True, False, None]},
        {"é": "Shopwise — Trail gear", "emoji": "😀", "del": "\x7f", "ctl": '\x01\n\t"\\'},
        {"small": [1e-05, 2.5e-05, 1e-07, 1.5e-09, 1e-10, 5e-324, -0.0001]},
        {"large": [1e16, 1.5e22, 1.7976931348623157e308, 123456789012345.6]},
        {"big": 2**70, "neg": -(2**64)},
        {1: "int key"},
        {"lone": "\ud800"},
        {"text": "e-5 and 1e-5 and 0.00001 in a string"},
    ],
)
def test_encode_json_writes_the_values_json_dumps_writes(value: Any) -> None:
    """Not the same bytes (UTF-8, not escapes; 1e-5, not 1e-05), the same JSON values;
    what orjson refuses (big ints, int keys, lone surrogates) json.dumps writes."""
    encoded = encode_json({"data": value})
    assert json.loads(encoded) == json.loads(json.dumps({"data": value}))


@strawberry.type
class Leaf:
    value: int


@dataclass
class TreeContext:
    seen: list[Any]
    extras: dict[str, Any]


@strawberry.type
class Branch:
    @strawberry.field
    def leaves(self, first: int = 1) -> list[Leaf]:
        return [Leaf(value=first)]


@strawberry.type
class Tree:
    @strawberry.field
    def branches(self, info: strawberry.Info[TreeContext]) -> list[Branch]:
        info.context.seen.append(selected_arguments(info, ("leaves",)))
        return [Branch(), Branch()]


@strawberry.type
class TreeQuery:
    @strawberry.field
    def tree(self) -> Tree:
        return Tree()


TREE = strawberry.Schema(TreeQuery, execution_context_class=FastExecutor)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ tree { branches { leaves(first: 2) { value } } } }", [{"first": "2"}]),
        ("query($n: Int) { tree { branches { leaves(first: $n) { value } } } }", [{"first": 4}]),
        ("{ tree { branches { ... on Branch { a: leaves { value } } } } }", [{}]),
        (
            "fragment L on Branch { leaves(first: 3) { value } } "
            "{ tree { branches { ...L leaves(first: 3) { value } } } }",
            [{"first": "3"}, {"first": "3"}],
        ),
        ("{ tree { branches { __typename } } }", []),
        ("{ tree { branches { leaves @include(if: true) { value } } } }", None),
    ],
)
async def test_lookahead_reads_plain_selections_only(
    query: str, expected: list[dict[str, Any]] | None
) -> None:
    context = TreeContext(seen=[], extras={})
    result = await TREE.execute(query, variable_values={"n": 4}, context_value=context)
    assert result.errors is None
    assert context.seen == [expected]
