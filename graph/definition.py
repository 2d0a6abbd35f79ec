"""Event definitions: named ORs of criteria over raw events (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.scalars import JSON

from graph.arguments import checked, time_range
from graph.common import Node, UserError
from graph.filters import PropertyOperator, StringMatchInput, TimeRange
from services import ids
from services.clock import to_datetime

if TYPE_CHECKING:
    from graph.context import Context


@strawberry.type(description="A condition on one text property (target text, path).")
class StringMatch:
    op: PropertyOperator = strawberry.field(description="Operator.")
    value: str | None = strawberry.field(description="Text to compare with.")


@strawberry.type(description="A condition on one event property.")
class PropertyConditionValue:
    property: str = strawberry.field(description="Property name.")
    op: PropertyOperator = strawberry.field(description="Operator.")
    value: JSON | None = strawberry.field(description="Value compared with.")


@strawberry.type(description="One alternative of a definition: a raw type, narrowed.")
class EventCriteria:
    type: str = strawberry.field(
        description="pageview | click | submit | change | <custom or server event name>"
    )
    selector: str | None = strawberry.field(
        description="CSS selector matched against the event's element hierarchy."
    )
    target_text: StringMatch | None = strawberry.field(description="Condition on target text.")
    path: StringMatch | None = strawberry.field(description="Condition on the page path.")
    properties: list[PropertyConditionValue] = strawberry.field(
        description="Conditions on event properties."
    )


def _string_match(document: dict[str, Any] | None) -> StringMatch | None:
    if document is None:
        return None
    return StringMatch(op=PropertyOperator(document["op"]), value=document.get("value"))


def _criteria(documents: list[dict[str, Any]]) -> list[EventCriteria]:
    return [
        EventCriteria(
            type=d["type"],
            selector=d.get("selector"),
            target_text=_string_match(d.get("target_text")),
            path=_string_match(d.get("path")),
            properties=[
                PropertyConditionValue(
                    property=p["property"], op=PropertyOperator(p["op"]), value=p.get("value")
                )
                for p in d.get("properties") or []
            ],
        )
        for d in documents
    ]


@strawberry.type(description="A defined event: a name and colour for events matching criteria.")
class EventDefinition(Node):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id.")
    name: str = strawberry.field(description="Name, unique in the environment (any case).")
    color: str = strawberry.field(description="Hex colour, e.g. #4f46e5.")
    description: str | None = strawberry.field(description="What the event means.")
    criteria: list[EventCriteria] = strawberry.field(
        description="OR of criteria (a combo event when more than one)."
    )
    created_at: datetime = strawberry.field(description="When it was defined.")

    @classmethod
    def from_row(cls, row: Any) -> EventDefinition:
        return cls(
            row=row,
            id=strawberry.ID(ids.encode("EventDefinition", row.id)),
            name=row.name,
            color=row.color,
            description=row.description,
            criteria=_criteria(row.criteria),
            created_at=to_datetime(row.created_us),
        )

    @strawberry.field(description="How many events match, in a time range (default: all time).")
    async def event_count(
        self, info: strawberry.Info[Context], time: TimeRange | None = None
    ) -> int:
        span = checked(lambda: time_range(time))
        low = high = None
        if span is not None:
            checked(lambda: span.checked("time"))
            low, high = span.bounds(info.context.loaders.now_us)
        to_us = high + 1 if high is not None else None  # the service's upper bound is exclusive
        key = (self.row.id, low, to_us)
        return await info.context.loaders.definition_event_count.load(key)


@strawberry.input(description="A condition on one event property.")
class PropertyConditionInput:
    property: str = strawberry.field(description="Property name.")
    op: PropertyOperator = strawberry.field(description="Operator.")
    value: JSON | None = strawberry.field(default=None, description="Value to compare with.")


@strawberry.input(description="One alternative of a definition.")
class EventCriteriaInput:
    type: str = strawberry.field(description="Raw event type or custom/server event name.")
    selector: str | None = strawberry.field(default=None, description="CSS selector.")
    target_text: StringMatchInput | None = strawberry.field(
        default=None, description="Condition on the clicked element's text."
    )
    path: StringMatchInput | None = strawberry.field(
        default=None, description="Condition on the page path (MATCHES: * wildcard)."
    )
    properties: list[PropertyConditionInput] | None = strawberry.field(
        default=None, description="Conditions on event properties."
    )


@strawberry.input(description="A definition to save.")
class DefineEventInput:
    name: str = strawberry.field(description="Name, unique in the environment.")
    color: str | None = strawberry.field(
        default=None, description="Hex colour; default picked from a palette."
    )
    description: str | None = strawberry.field(default=None, description="What it means.")
    criteria: list[EventCriteriaInput] = strawberry.field(
        description="OR of criteria (may be empty with fromEventId)."
    )
    from_event_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Define from a raw event: copies its type, path, target text, selector.",
    )


@strawberry.type(description="Result of defineEvent / updateEventDefinition.")
class EventDefinitionPayload:
    definition: EventDefinition | None = strawberry.field(description="The saved definition.")
    errors: list[UserError] = strawberry.field(description="Why nothing was saved, if so.")
