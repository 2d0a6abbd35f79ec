"""The items of a batch: checked in one loop, and placed back in the caller's own terms.

`validated` is the one loop that checks a batch item by item, for every way in: GraphQL
mutations, the Heap and Segment APIs (ingest.prepare_track, ingest.add_user_properties,
links.prepare_links, the Segment translation).

The Heap and Segment adapters translate a caller's batch into the ingestion service's items.
The service answers in its own terms: problems at its own item indexes, fields named as the
GraphQL API names them (`idempotencyKey`, `properties.plan`). `Placed` keeps, with each item,
its position in the caller's batch and a map of field names, so that a problem is put back in
the caller's terms (`messageId` of message 7) in one place for every format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.batching import in_slices
from services.errors import Problem, UsertrailError

T = TypeVar("T")
V = TypeVar("V")

# A service field name -> the caller's. A whole name is looked up first (`context.url`), then
# the head of a dotted one (`properties` of `properties.plan`); names not in the map are the
# caller's too. An empty name means the item itself.
FieldNames = Mapping[str, str]


async def validated(
    items: Sequence[T], validate: Callable[[T, int], V]
) -> tuple[list[V], list[Problem]]:
    """`validate(item, index)` of each item it accepts, and a problem for each it refuses.

    `validate` is plain synchronous code that raises a UsertrailError to refuse an item. The
    items go through it in slices, letting the event loop run in between (in_slices says why);
    the problems come in index order.
    """
    valid: list[V] = []
    problems: list[Problem] = []
    async for start, part in in_slices(items):
        for index, item in enumerate(part, start):
            try:
                valid.append(validate(item, index))
            except UsertrailError as error:
                problems.append(error.problem.at(index))
    return valid, problems


def caller_field(name: str | None, names: FieldNames) -> str | None:
    """A service field name as the caller spells it; None for the item itself."""
    if name is None:
        return None
    found = names.get(name)
    if found is None:
        head, dot, rest = name.partition(".")
        found = names.get(head, head) + dot + rest
    return found or None


@dataclass(slots=True)
class Placed(Generic[T]):
    """Service items translated from a caller's batch, each with its position and field names."""

    items: list[T] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    names: list[FieldNames] = field(default_factory=list)

    def add(self, item: T, position: int, names: FieldNames) -> None:
        """Add an item that came from the caller's `position`, its fields named by `names`."""
        self.items.append(item)
        self.positions.append(position)
        self.names.append(names)

    def __len__(self) -> int:
        return len(self.items)

    def slices(self, size: int) -> Iterator[Placed[T]]:
        """The items in consecutive parts of at most `size` (one service call each)."""
        for start in range(0, len(self.items), size):
            end = start + size
            yield Placed(self.items[start:end], self.positions[start:end], self.names[start:end])

    def problems(self, problems: Iterable[Problem]) -> list[Problem]:
        """Problems the service found in these items, at the caller's positions and with the
        caller's field names; a problem of no item stays as it is."""
        placed: list[Problem] = []
        for problem in problems:
            index = problem.index
            if index is None:
                placed.append(problem)
                continue
            name = caller_field(problem.field, self.names[index])
            placed.append(Problem(problem.code, problem.message, name, self.positions[index]))
        return placed
