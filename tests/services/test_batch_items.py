"""The items of a batch (services/batch_items.py): one validation loop, and problems put back
at the caller's positions with the caller's field names."""

from __future__ import annotations

import asyncio

from services.batch_items import Placed, caller_field, validated
from services.errors import InvalidInput, Problem


def _even(value: int, index: int) -> tuple[int, int]:
    if value % 2:
        raise InvalidInput(f"{value} is odd", field="value", code="ODD")
    return index, value


async def test_validated_keeps_the_valid_and_refuses_the_others_in_index_order() -> None:
    valid, problems = await validated([4, 7, 8, 9, 10], _even)
    assert valid == [(0, 4), (2, 8), (4, 10)]
    assert problems == [
        Problem("ODD", "7 is odd", "value", 1),
        Problem("ODD", "9 is odd", "value", 3),
    ]


async def test_validated_lets_the_event_loop_run_between_slices() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []

    def record(value: int, index: int) -> int:
        seen.append(ticks)
        return value

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await validated(list(range(100)), record)
    finally:
        task.cancel()
    assert seen[0] == seen[31]  # one slice runs without a break
    assert seen[31] < seen[32] < seen[64] < seen[96]  # others ran between slices


def test_caller_field_looks_up_whole_names_then_heads() -> None:
    names = {"context.url": "context.page.url", "properties": "traits", "input": ""}
    assert caller_field("context.url", names) == "context.page.url"
    assert caller_field("context.ip", names) == "context.ip"
    assert caller_field("properties.plan.tier", names) == "traits.plan.tier"
    assert caller_field("properties", names) == "traits"
    assert caller_field("input", names) is None  # the item itself
    assert caller_field(None, names) is None


def test_placed_problems_are_at_caller_positions_with_caller_names() -> None:
    placed: Placed[str] = Placed()
    placed.add("a", 3, {"timestamp": "originalTimestamp"})
    placed.add("b", 5, {})
    problems = [
        Problem("BAD", "no", "timestamp", 0),
        Problem("BAD", "no", "timestamp", 1),
        Problem("BAD", "no", None, None),
    ]
    assert placed.problems(problems) == [
        Problem("BAD", "no", "originalTimestamp", 3),
        Problem("BAD", "no", "timestamp", 5),
        Problem("BAD", "no", None, None),
    ]


def test_placed_slices_keep_positions_and_names() -> None:
    placed: Placed[int] = Placed()
    for n in range(5):
        placed.add(n, n * 10, {"x": str(n)})
    parts = list(placed.slices(2))
    assert [p.items for p in parts] == [[0, 1], [2, 3], [4]]
    assert parts[1].problems([Problem("BAD", "no", "x", 1)]) == [Problem("BAD", "no", "3", 30)]
