"""Filter inputs of the Users and Sessions pages (SPEC §5, §6)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from graph import input_conversion
from graph.enums import EventSource


@strawberry.enum(description="How a property is compared.")
class PropertyOperator(Enum):
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    IS_SET = "IS_SET"
    IS_NOT_SET = "IS_NOT_SET"
    GREATER_THAN = "GREATER_THAN"
    GREATER_OR_EQUAL = "GREATER_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_OR_EQUAL = "LESS_OR_EQUAL"
    IN = "IN"
    NOT_IN = "NOT_IN"
    MATCHES = "MATCHES"


@strawberry.input(description="Exactly one way of giving a range: lastDays, or from and/or to.")
class TimeRange:
    last_days: int | None = strawberry.field(default=None, description="The last N days.")
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Start (inclusive)."
    )
    to: datetime | None = strawberry.field(default=None, description="End (inclusive).")


# Its own from_input refuses an unreadable `from` or `to`, naming it (graph/scalars.py).
input_conversion.install(TimeRange)


@strawberry.input(
    description="A condition on one property. `value` is a string, number or "
    "boolean; a list for IN/NOT_IN; absent for IS_SET/IS_NOT_SET. String "
    "comparisons are case-sensitive except CONTAINS/NOT_CONTAINS."
)
class PropertyCondition:
    property: str = strawberry.field(description="Property name (identity and userId too).")
    op: PropertyOperator = strawberry.field(description="Operator.")
    value: JSON | None = strawberry.field(default=None, description="Value to compare with.")


@strawberry.input(
    description="Which events: exactly one of definitionId / type, optionally "
    "narrowed by property conditions."
)
class EventMatch:
    definition_id: strawberry.ID | None = strawberry.field(
        default=None, description="A defined event."
    )
    type: str | None = strawberry.field(default=None, description="A raw event type.")
    where: list[PropertyCondition] | None = strawberry.field(
        default=None, description="Conditions on the event's properties."
    )


@strawberry.input(
    description='"Users who have done event X [where …] [at least N times] [in a time range]".'
)
class EventCondition:
    event: EventMatch = strawberry.field(description="Which events.")
    did: bool | None = strawberry.field(
        default=True, description="false: users who have NOT done it."
    )
    at_least: int | None = strawberry.field(default=1, description="Minimum count.")
    time: TimeRange | None = strawberry.field(
        default=None, description="Default: the filter's `seen` range."
    )


@strawberry.input(description="Users filter: everything is ANDed; anyOf is an OR of filters.")
class UserFilter:
    seen: TimeRange | None = strawberry.field(
        default=None, description="Users with activity in this range (default lastDays 7)."
    )
    properties: list[PropertyCondition] | None = strawberry.field(
        default=None, description="Conditions on user properties."
    )
    events: list[EventCondition] | None = strawberry.field(
        default=None, description="Conditions on what users did."
    )
    any_of: list[UserFilter] | None = strawberry.field(
        default=None, description="OR of nested filters, ANDed with the rest."
    )
    segment_id: strawberry.ID | None = strawberry.field(
        default=None, description="Members of a saved segment, ANDed with the rest."
    )


@strawberry.input(
    description="The Sessions page filter. Filtering by an event or by user "
    "properties lists only client-originated sessions; filtering by one user "
    "lists all of that user's sessions; includeServerOnly lifts that limitation."
)
class SessionFilter:
    time: TimeRange | None = strawberry.field(default=None, description="Default lastDays 7.")
    event: EventMatch | None = strawberry.field(
        default=None, description="Sessions containing such an event."
    )
    user_id: str | None = strawberry.field(default=None, description="One user's sessions.")
    identity: str | None = strawberry.field(default=None, description="One user's sessions.")
    user_properties: list[PropertyCondition] | None = strawberry.field(
        default=None, description="Conditions on the session's user."
    )
    sources: list[EventSource] | None = strawberry.field(
        default=None, description="Session sources."
    )
    include_server_only: bool | None = strawberry.field(
        default=False, description="Also list server-only sessions."
    )


@strawberry.input(description="Narrowing of one user's sessions.")
class UserSessionFilter:
    time: TimeRange | None = strawberry.field(default=None, description="Session start range.")
    event: EventMatch | None = strawberry.field(
        default=None, description="Sessions containing such an event."
    )
    sources: list[EventSource] | None = strawberry.field(
        default=None, description="Session sources."
    )
