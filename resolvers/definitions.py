"""Defined-event queries and mutations."""

from __future__ import annotations

from typing import Any

import strawberry

from graph.common import UserError
from graph.context import Context
from graph.definition import DefineEventInput, EventDefinition, EventDefinitionPayload
from graph.payloads import DeletePayload
from services import definitions, ids
from services.conditions import PropertyCondition
from services.errors import NotFound, UsertrailError
from services.matching import Criterion, StringMatch

Info = strawberry.Info[Context]


def _criteria(value: DefineEventInput) -> list[Criterion]:
    return [
        Criterion(
            type=c.type,
            selector=c.selector,
            target_text=StringMatch(c.target_text.op.value, c.target_text.value)
            if c.target_text is not None
            else None,
            path=StringMatch(c.path.op.value, c.path.value) if c.path is not None else None,
            properties=tuple(
                PropertyCondition(p.property, p.op.value, p.value) for p in c.properties or []
            ),
        )
        for c in value.criteria
    ]


def _event_key(value: strawberry.ID | None) -> tuple[int, int] | None:
    if value is None:
        return None
    decoded = ids.decode(str(value), "Event")
    if decoded is None or len(decoded[1]) != 2:
        raise NotFound(
            "fromEventId is not an event id", field="input.fromEventId", code="UNKNOWN_EVENT"
        )
    return decoded[1][0], decoded[1][1]


def _definition_id(value: strawberry.ID) -> int:
    decoded = ids.decode(str(value), "EventDefinition")
    if decoded is None or len(decoded[1]) != 1:
        raise NotFound("no such event definition", field="id", code="UNKNOWN_DEFINITION")
    return decoded[1][0]


def _saved(row: object) -> EventDefinitionPayload:
    return EventDefinitionPayload(definition=EventDefinition.from_row(row), errors=[])


def _refused(error: UsertrailError) -> EventDefinitionPayload:
    return EventDefinitionPayload(definition=None, errors=[UserError.from_problem(error.problem)])


def _fields(input: DefineEventInput) -> dict[str, Any]:
    """What defineEvent and updateEventDefinition hand to the service alike."""
    return {
        "name": input.name,
        "color": input.color,
        "description": input.description,
        "criteria": _criteria(input),
        "from_event": _event_key(input.from_event_id),
    }


async def define_event(info: Info, input: DefineEventInput) -> EventDefinitionPayload:
    ctx = info.context
    try:
        row = await definitions.create(
            ctx.db,
            environment_id=ctx.environment_id,
            **_fields(input),
        )
    except UsertrailError as error:
        return _refused(error)
    return _saved(row)


async def update_event_definition(
    info: Info, id: strawberry.ID, input: DefineEventInput
) -> EventDefinitionPayload:
    ctx = info.context
    try:
        row = await definitions.update(
            ctx.db,
            environment_id=ctx.environment_id,
            definition_id=_definition_id(id),
            **_fields(input),
        )
    except UsertrailError as error:
        return _refused(error)
    return _saved(row)


async def delete_event_definition(info: Info, id: strawberry.ID) -> DeletePayload:
    ctx = info.context
    try:
        await definitions.delete(
            ctx.db, environment_id=ctx.environment_id, definition_id=_definition_id(id)
        )
    except UsertrailError as error:
        return DeletePayload(deleted_id=None, errors=[UserError.from_problem(error.problem)])
    return DeletePayload(deleted_id=id, errors=[])


async def event_definitions(info: Info) -> list[EventDefinition]:
    async with info.context.db.read() as conn:
        rows = await definitions.list_(conn, environment_id=info.context.environment_id)
    return [EventDefinition.from_row(row) for row in rows]
