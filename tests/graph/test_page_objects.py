"""The objects pages build without their dataclass __init__ are the ones __init__ builds, and
the executor's shortcut for Strawberry's `is_type_of` accepts and refuses what it does."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import pytest
import strawberry

from graph.event import Event, EventEdge
from graph.execution import FastExecutor
from tests.support import fast_paths_only

pytestmark = fast_paths_only

Row = namedtuple("Row", "user_id id session_id type time_us source properties")


@pytest.mark.parametrize("source", ["WEB", "SERVER"])
def test_event_from_row_is_what_init_makes(source: str) -> None:
    row = Row(1, 2, 3, "click", 1_700_000_000_000_000, source, {"path": "/", "n": [1, 2]})
    built = Event.from_row(row)
    made = Event(row=row, type="click", server_side=source == "SERVER", properties=row.properties)
    assert type(built) is Event and vars(built) == vars(made)
    edge = EventEdge.of(built)
    assert type(edge) is EventEdge and vars(edge) == vars(EventEdge(node=built))


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Cat(Named):
    name: str
    lives: int = 9


@strawberry.type
class Dog(Named):
    name: str


@strawberry.type
class Holder:
    pet: Cat


def _cat_cast_as_dog() -> Any:
    return strawberry.cast(Dog, Cat(name="felix"))


@strawberry.type
class Query:
    @strawberry.field
    def cat(self) -> Cat:
        return Cat(name="tom")

    @strawberry.field
    def cats(self) -> list[Cat]:
        return [Cat(name="a"), _cat_cast_as_dog(), Cat(name="b")]

    @strawberry.field
    def impostor(self) -> Cat | None:
        return _cat_cast_as_dog()

    @strawberry.field
    def cast_cat(self) -> Cat:
        return strawberry.cast(Cat, Cat(name="cast"))

    @strawberry.field
    def dog_as_cat(self) -> Cat | None:
        return Dog(name="rex")  # type: ignore[return-value]

    @strawberry.field
    def holders(self) -> list[Holder]:
        return [Holder(pet=Cat(name="c")), Holder(pet=_cat_cast_as_dog())]

    @strawberry.field
    def named(self) -> list[Named]:
        return [Cat(name="n"), Dog(name="d"), strawberry.cast(Dog, Cat(name="x"))]


FAST = strawberry.Schema(Query, types=[Cat, Dog], execution_context_class=FastExecutor)
PLAIN = strawberry.Schema(Query, types=[Cat, Dog])
QUERIES = [
    "{ cat { name lives } }",
    "{ cats { name lives } }",
    "{ impostor { name } }",
    "{ castCat { name } }",
    "{ dogAsCat { name } }",
    "{ holders { pet { name lives } } }",
    "{ named { __typename name } }",
]


async def _run(schema: strawberry.Schema, query: str) -> Any:
    result = await schema.execute(query)
    return result.data, [(e.message, e.path) for e in result.errors or ()]


@pytest.mark.parametrize("query", QUERIES)
async def test_type_checks_answer_as_strawberry_does(query: str) -> None:
    assert await _run(FAST, query) == await _run(PLAIN, query)


async def test_a_cast_to_another_type_is_refused() -> None:
    refused = ("Expected value of type 'Cat' but got: <Cat instance>.", ["cats", 1])
    assert await _run(FAST, "{ cats { name } }") == (None, [refused])
