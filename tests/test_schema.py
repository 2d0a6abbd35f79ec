"""schema.graphql is generated from the code, and it contains the public contract."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
)

from graph.schema import schema

ROOT = Path(__file__).parent.parent
CONTRACT = Path(__file__).parent / "contract.graphql"

# Parts of the contract that later issues deliver; each names its issue. Everything not
# listed here must be present with the contract's exact types.
KNOWN_GAPS: dict[str, str] = {}


def contract_differences(contract: GraphQLSchema, ours: GraphQLSchema) -> list[str]:
    """Every contract type, field, argument, enum value and input field that ours lacks."""
    missing: list[str] = []
    for name, expected in contract.type_map.items():
        if name.startswith("__"):
            continue
        actual = ours.type_map.get(name)
        if actual is None:
            missing.append(name)
            continue
        if type(actual) is not type(expected):
            missing.append(f"{name} (kind {type(actual).__name__})")
            continue
        if isinstance(expected, GraphQLEnumType):
            missing += [f"{name}.{v}" for v in expected.values if v not in actual.values]
        if isinstance(expected, GraphQLObjectType | GraphQLInterfaceType):
            have = {i.name for i in actual.interfaces}
            missing += [
                f"{name} implements {i.name}" for i in expected.interfaces if i.name not in have
            ]
        if isinstance(expected, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in expected.fields.items():
                theirs = actual.fields.get(field_name)
                where = f"{name}.{field_name}"
                if theirs is None:
                    missing.append(where)
                    continue
                if str(theirs.type) != str(field.type):
                    missing.append(f"{where} (type {theirs.type}, contract {field.type})")
                for arg_name, arg in getattr(field, "args", {}).items():
                    ours_arg = theirs.args.get(arg_name)
                    if ours_arg is None:
                        missing.append(f"{where}({arg_name})")
                    elif str(ours_arg.type) != str(arg.type):
                        missing.append(
                            f"{where}({arg_name}) (type {ours_arg.type}, contract {arg.type})"
                        )
    return missing


def test_schema_file_is_generated_from_the_code() -> None:
    assert (ROOT / "schema.graphql").read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `make schema`"
    )


def test_schema_contains_the_contract_except_known_gaps() -> None:
    contract = build_schema(CONTRACT.read_text())
    missing = contract_differences(contract, build_schema(schema.as_str()))
    unexplained = [m for m in missing if m.split(" ")[0] not in KNOWN_GAPS]
    assert unexplained == []
    closed = [gap for gap in KNOWN_GAPS if gap not in {m.split(" ")[0] for m in missing}]
    assert closed == [], "these gaps are closed now: remove them from KNOWN_GAPS"


def test_every_type_and_field_has_a_description() -> None:
    undocumented = []
    for name, kind in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Boolean", "ID", "Float"}:
            continue
        if not kind.description:
            undocumented.append(name)
        for field_name, field in getattr(kind, "fields", {}).items():
            if not field.description:
                undocumented.append(f"{name}.{field_name}")
    assert undocumented == []
