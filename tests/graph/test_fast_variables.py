"""graph/variables.py coerces exactly as graphql-core does, or leaves the value to graphql-core."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    OperationDefinitionNode,
    build_schema,
    parse,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language.parser import MAX_NESTING_DEPTH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.ingestion import TRACK_BATCH, demo_events, graphql_body
from graph.execution import FastExecutor
from graph.schema import schema as strawberry_schema
from graph.variables import Coercers, VariablesExecutor, coerce_variables, operation_of
from services.clock import UnreadableTime

SDL = """
enum Color { RED GREEN BLUE }
scalar Odd
input Inner {
  name: String!
  tags: [String!]
  color: Color = RED
  score: Float
  count: Int
  id: ID
  flag: Boolean
  odd: Odd
}
input Outer {
  inner: Inner
  inners: [Inner!]! = []
  matrix: [[Int]]
  nested: Outer
  label: String = "x"
}
input Choice @oneOf { a: Int, b: String }
type Query { f(outer: Outer, choice: Choice, n: Int, names: [String!]): Int }
"""
OPERATION = """
query($outer: Outer, $inners: [Inner!]!, $matrix: [[Int!]], $choice: Choice, $n: Int = 3,
      $text: String!, $flag: Boolean, $colors: [Color]) {
  f(outer: $outer, n: $n)
}"""
VARIABLE_NAMES = ("outer", "inners", "matrix", "choice", "n", "text", "flag", "colors")


def _odd(value: Any) -> int:
    if not isinstance(value, int) or value % 2 == 0:
        raise ValueError(f"not odd: {value!r}")
    return value


SCHEMA = build_schema(SDL)
SCHEMA.type_map["Odd"].coerce_input_value = _odd  # type: ignore[attr-defined]
DEFINITIONS = parse(OPERATION).definitions[0].variable_definitions  # type: ignore[attr-defined]


def same(left: Any, right: Any) -> bool:
    """Equal, with equal types all the way down (1, 1.0 and True differ)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    return bool(left == right) or left is right


def _sources(values: VariableValues) -> list[tuple[Any, ...]]:
    """The sources, the signature's type by name (graphql-core builds a new one per call)."""
    return [
        (name, s.signature.name, str(s.signature.type), s.signature.default, id(s.value))
        for name, s in values.sources.items()
    ]


def assert_coerced_alike(schema: Any, definitions: Any, inputs: Any) -> VariableValues | None:
    """The fast coercion agrees with graphql-core's wherever it answers."""
    expected = get_variable_values(schema, definitions, inputs)
    fast = coerce_variables(schema, definitions, inputs, Coercers())
    if isinstance(expected, list):
        assert fast is None, (expected, fast)
        return None
    if fast is not None:
        assert same(fast.coerced, expected.coerced), (fast.coerced, expected.coerced)
        assert list(fast.coerced) == list(expected.coerced)
        assert _sources(fast) == _sources(expected)
    return fast


# ----------------------------------------------------------------------- value strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(["RED", "GREEN", "BLUE", "PURPLE", "2026-01-01T00:00:00Z", "12"]),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "x", "tags", "a"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def sometimes_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `valid`, one time in eight anything (strategies named once: reprs stay short)."""
    return st.integers(0, 7).flatmap(lambda pick: junk if pick == 0 else valid)


def optional(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return sometimes_junk(st.one_of(st.none(), valid, valid))


inner_values = st.fixed_dictionaries(
    {"name": sometimes_junk(st.text(max_size=5))},
    optional={
        "tags": optional(st.lists(sometimes_junk(st.text(max_size=3)), max_size=3)),
        "color": optional(st.sampled_from(["RED", "GREEN", "BLUE"])),
        "score": optional(st.floats(allow_nan=False) | st.integers(-(2**60), 2**60)),
        "count": optional(st.integers(-(2**33), 2**33) | st.floats(-10, 10)),
        "id": optional(st.text(max_size=4) | st.integers(-100, 100)),
        "flag": optional(st.booleans()),
        "odd": optional(st.integers(-9, 9)),
    },
)
matrices = optional(
    st.lists(optional(st.lists(optional(st.integers(-9, 9)), max_size=3)), max_size=3)
)
outer_values = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "inner": optional(inner_values),
            "inners": optional(st.lists(sometimes_junk(inner_values), max_size=3) | inner_values),
            "matrix": matrices,
            "label": optional(st.text(max_size=3)),
        },
    ),
    lambda outer: st.fixed_dictionaries({"nested": optional(outer)}),
    max_leaves=4,
)
variables = st.fixed_dictionaries(
    {
        "inners": sometimes_junk(st.lists(sometimes_junk(inner_values), max_size=3)),
        "text": sometimes_junk(st.text(max_size=4)),
        "n": optional(st.integers(-(2**32), 2**32)),
    },
    optional={
        "outer": optional(outer_values),
        "matrix": matrices,
        "choice": optional(st.dictionaries(st.sampled_from(["a", "b"]), scalars, max_size=2)),
        "flag": optional(st.booleans()),
        "colors": optional(st.lists(optional(st.sampled_from(["RED", "BLUE"])), max_size=3)),
        "unused": junk,
    },
)


# No deadline: other processes share the machine, and only the values are under test.
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variables)
def test_same_values_as_graphql_core(inputs: dict[str, Any]) -> None:
    assert_coerced_alike(SCHEMA, DEFINITIONS, inputs)


@settings(max_examples=200, deadline=None)
@given(st.lists(sometimes_junk(inner_values), min_size=1, max_size=4))
def test_valid_values_take_the_fast_path(inners: list[Any]) -> None:
    inputs = {"inners": inners, "text": "t", "n": 1}
    fast = assert_coerced_alike(SCHEMA, DEFINITIONS, inputs)
    valid = get_variable_values(SCHEMA, DEFINITIONS, inputs)
    if not isinstance(valid, list):
        assert fast is not None


def test_defaults_and_missing_variables_are_left_to_graphql_core() -> None:
    assert assert_coerced_alike(SCHEMA, DEFINITIONS, {"inners": [], "text": "t"}) is None
    assert assert_coerced_alike(SCHEMA, DEFINITIONS, {"inners": [], "n": None}) is None
    assert coerce_variables(SCHEMA, DEFINITIONS, ["not", "a", "dict"], Coercers()) is None


def test_field_defaults_are_filled_in() -> None:
    inputs = {"inners": {"name": "a"}, "text": "t", "n": 2, "outer": {"matrix": 3}}
    fast = assert_coerced_alike(SCHEMA, DEFINITIONS, inputs)
    assert fast is not None
    assert fast.coerced["inners"] == [{"name": "a", "color": "RED"}]
    assert fast.coerced["outer"] == {"inners": [], "matrix": [[3]], "label": "x"}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"label": "bottom"}
    for _ in range(depth):
        value = {"nested": value}
    return value


def _listed(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", range(MAX_NESTING_DEPTH - 3, MAX_NESTING_DEPTH + 3))
def test_nesting_limit_is_graphql_cores(depth: int) -> None:
    schema = build_schema(
        "input Deep { nested: Deep, label: String, items: [[[Int]]] } "
        "type Query { f(deep: Deep, ints: [[[[Int]]]]): Int }"
    )
    definitions = parse("query($deep: Deep, $ints: [[[[Int]]]]) { f }").definitions[0]
    for inputs in (
        {"deep": _nested(depth)},
        {"deep": {**_nested(depth - 1), "items": None}},
        {"deep": {**_nested(depth - 2), "items": [[None]]}},
        {"ints": _listed(depth, 1)},
        {"ints": None, "deep": {"items": 4}},
    ):
        assert_coerced_alike(schema, definitions.variable_definitions, inputs)  # type: ignore[attr-defined]


def test_one_of_inputs_are_left_to_graphql_core() -> None:
    inputs = {"inners": [], "text": "t", "n": 1, "choice": {"a": 1}}
    assert assert_coerced_alike(SCHEMA, DEFINITIONS, inputs) is None


# ------------------------------------------------------------------ the application schema

APP_SCHEMA = strawberry_schema._schema
TRACK_DEFINITIONS = parse(TRACK_BATCH).definitions[0].variable_definitions  # type: ignore[attr-defined]


def test_track_batch_variables_coerce_alike() -> None:
    body = graphql_body(demo_events(300, seed=3))
    fast = assert_coerced_alike(APP_SCHEMA, TRACK_DEFINITIONS, body["variables"])
    assert fast is not None


track_events = st.lists(
    st.fixed_dictionaries(
        {"event": sometimes_junk(st.text(max_size=4))},
        optional={
            "userId": optional(st.text(max_size=4)),
            "identity": optional(st.text(max_size=4)),
            "source": optional(st.sampled_from(["WEB", "IOS", "ANDROID", "SERVER", "web"])),
            "timestamp": optional(
                st.sampled_from(["2026-11-08T11:39:22.463+00:00", "2026-11-08", "soon"])
            ),
            "properties": optional(junk),
            "context": optional(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "url": optional(st.text(max_size=4)),
                        "screenWidth": optional(st.integers(-(2**32), 2**32)),
                        "location": optional(junk),
                    },
                )
            ),
            "idempotencyKey": optional(st.text(max_size=3)),
        },
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(track_events)
def test_track_inputs_coerce_alike(events: list[Any]) -> None:
    assert_coerced_alike(APP_SCHEMA, TRACK_DEFINITIONS, {"events": events})


def test_operation_is_chosen_as_graphql_core_chooses() -> None:
    document = parse("query A { f } query B { f } fragment F on Query { f }")
    a, b = (d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    assert operation_of(document, "A") is a
    assert operation_of(document, "B") is b
    assert operation_of(document, None) is None
    assert operation_of(document, "C") is None
    single = parse("{ f }")
    assert operation_of(single, None) is single.definitions[0]


def test_errors_are_graphql_cores() -> None:
    """Invalid variables answer exactly as before: graphql-core's own errors."""
    document = parse(TRACK_BATCH)
    cases: list[Any] = [
        [{"event": "a", "color": "red"}],
        [{"event": None}],
        [{"event": "a", "source": "MARS"}],
        [{"event": "a", "timestamp": "yesterday", "userId": 7}],
        [{"event": "a", "context": {"screenWidth": 2**40}}],
        [{"event": "a"}, {"event": "b", "context": []}],
        None,
    ]
    for events in cases:
        built = VariablesExecutor.build(
            APP_SCHEMA, document, raw_variable_values={"events": events}
        )
        before = FastExecutor.build(APP_SCHEMA, document, raw_variable_values={"events": events})
        assert isinstance(built, list) and isinstance(before, list)
        assert [e.formatted for e in built] == [e.formatted for e in before]


def test_unreadable_timestamps_coerce_alike() -> None:
    """Both paths read a timestamp that is no date-time to the same marker (graph/scalars.py)."""
    events = [{"event": "a", "timestamp": t} for t in ("yesterday", "2026-02-30T10:00:00Z", 5)]
    fast = assert_coerced_alike(APP_SCHEMA, TRACK_DEFINITIONS, {"events": events})
    assert fast is not None
    assert [e["timestamp"] for e in fast.coerced["events"]] == [
        UnreadableTime("yesterday"),
        UnreadableTime("2026-02-30T10:00:00Z"),
        UnreadableTime(5),
    ]


def test_the_executor_runs_with_graphql_cores_values() -> None:
    document = parse(f"{TRACK_BATCH} fragment F on Query {{ eventNames {{ name }} }}")
    events = graphql_body(demo_events(20, seed=5))["variables"]["events"]
    built = VariablesExecutor.build(APP_SCHEMA, document, raw_variable_values={"events": events})
    before = FastExecutor.build(APP_SCHEMA, document, raw_variable_values={"events": events})
    assert isinstance(built, VariablesExecutor) and isinstance(before, FastExecutor)
    assert built.operation is before.operation is document.definitions[0]
    assert same(built.variable_values.coerced, before.variable_values.coerced)
    assert _sources(built.variable_values) == _sources(before.variable_values)
    assert built.fragments.keys() == before.fragments.keys() == {"F"}
    assert built.error_propagation == before.error_propagation
