"""Filter inputs of the Users and Sessions pages (SPEC §5, §6)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from graph import input_conversion
from graph.enums import EventSource


@strawberry.enum(
    description="How a property is compared (SPEC §5a), the same in every filter, event "
    "`where`, definition and segment. A value's text form: a string as it is, a number in "
    'its shortest form (49.0 reads "49"), true/false. A value is numeric when it is a '
    'number or a string that, trimmed, is a decimal number (" 49 ", "049", "4.9e1"). The '
    "NOT_ operators match exactly where their positive does not, absent properties included."
)
class PropertyOperator(Enum):
    EQUALS = strawberry.enum_value(
        "EQUALS",
        description="Number: the value is numeric and equal. String: the text form is equal "
        "(case-sensitive). Boolean: the value is that boolean, or the string true/false in "
        "any case.",
    )
    NOT_EQUALS = strawberry.enum_value("NOT_EQUALS", description="Not EQUALS (absent too).")
    CONTAINS = strawberry.enum_value(
        "CONTAINS", description="The text form contains the string, ignoring case (Unicode)."
    )
    NOT_CONTAINS = strawberry.enum_value("NOT_CONTAINS", description="Not CONTAINS (absent too).")
    STARTS_WITH = strawberry.enum_value(
        "STARTS_WITH", description="The text form starts with the string (case-sensitive)."
    )
    ENDS_WITH = strawberry.enum_value(
        "ENDS_WITH", description="The text form ends with the string (case-sensitive)."
    )
    IS_SET = strawberry.enum_value(
        "IS_SET", description="The property is present (an empty string is set)."
    )
    IS_NOT_SET = strawberry.enum_value("IS_NOT_SET", description="The property is absent.")
    GREATER_THAN = strawberry.enum_value(
        "GREATER_THAN",
        description="The value is numeric and greater; give a number or a numeric string.",
    )
    GREATER_OR_EQUAL = strawberry.enum_value(
        "GREATER_OR_EQUAL", description="The value is numeric and greater or equal."
    )
    LESS_THAN = strawberry.enum_value("LESS_THAN", description="The value is numeric and less.")
    LESS_OR_EQUAL = strawberry.enum_value(
        "LESS_OR_EQUAL", description="The value is numeric and less or equal."
    )
    IN = strawberry.enum_value(
        "IN", description="EQUALS any element of the list, each by its own kind."
    )
    NOT_IN = strawberry.enum_value("NOT_IN", description="Not IN (absent too).")
    MATCHES = strawberry.enum_value(
        "MATCHES",
        description="The whole text form matches the pattern: * any run of characters, the "
        "rest literal, case-sensitive.",
    )


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
    description="A condition on one property (SPEC §5a). `value` is a string, number or "
    "boolean; a list for IN/NOT_IN; absent for IS_SET/IS_NOT_SET. String "
    "comparisons are case-sensitive except CONTAINS/NOT_CONTAINS."
)
class PropertyCondition:
    property: str = strawberry.field(
        description="Property name: any characters, taken literally (identity, userId, email too)."
    )
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


@strawberry.input(description="An inclusive range of whole numbers: atLeast and/or atMost.")
class IntRange:
    at_least: int | None = strawberry.field(default=None, description="Lowest value (>= 0).")
    at_most: int | None = strawberry.field(default=None, description="Highest value (>= 0).")


@strawberry.input(description="A condition on one text property.")
class StringMatchInput:
    op: PropertyOperator = strawberry.field(description="Operator.")
    value: str | None = strawberry.field(default=None, description="Text to compare with.")


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
    entry_page: StringMatchInput | None = strawberry.field(
        default=None,
        description="Condition on Session.entryPage (null for server-only sessions, so only "
        "NOT_ and IS_NOT_SET operators match those).",
    )
    exit_page: StringMatchInput | None = strawberry.field(
        default=None, description="Condition on Session.exitPage."
    )
    duration: IntRange | None = strawberry.field(
        default=None, description="Range of Session.durationSeconds, in seconds."
    )
    pageviews: IntRange | None = strawberry.field(
        default=None, description="Range of Session.pageviewCount."
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
    entry_page: StringMatchInput | None = strawberry.field(
        default=None,
        description="Condition on Session.entryPage (null for server-only sessions, so only "
        "NOT_ and IS_NOT_SET operators match those).",
    )
    exit_page: StringMatchInput | None = strawberry.field(
        default=None, description="Condition on Session.exitPage."
    )
    duration: IntRange | None = strawberry.field(
        default=None, description="Range of Session.durationSeconds, in seconds."
    )
    pageviews: IntRange | None = strawberry.field(
        default=None, description="Range of Session.pageviewCount."
    )
