"""User and session filters (SPEC §5, §6), validated and compiled to SQL conditions.

Filters are frozen dataclasses (hashable, so dataloaders can key on them). Compilation
yields SQLAlchemy conditions over the users, sessions and events tables: EXISTS and IN
subqueries on indexed columns; nothing is filtered in Python. A filter's size (conditions,
IN values, segment nesting; services/filter_size.py) is checked before it compiles: the
`checked` methods bound it as written, the resolvers again with the named segments inlined.

Length: the filter dataclasses and their compilation to SQL read together; the size
measure (services/filter_size.py) and session shapes (services/session_shape.py) are out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, exists, false, func, not_, or_, select, true, tuple_
from sqlalchemy.sql.elements import ColumnElement

from models import Event, Session, User
from services import segment_members
from services.clock import DAY_US
from services.condition_sql import IntegerColumn, Operand, TextColumn, condition_sql, json_operand
from services.conditions import PropertyCondition
from services.errors import InvalidInput
from services.filter_size import FilterSize, expanded_size, within_limits
from services.limits import MAX_ANY_OF_DEPTH
from services.session_shape import SessionShape

U = User.__table__
S = Session.__table__
E = Event.__table__

MAX_LAST_DAYS = 3650
MAX_AT_LEAST = 10_000
MAX_DEPTH = MAX_ANY_OF_DEPTH
AUTOCAPTURED = {
    "Initial Browser", "Initial Platform", "Initial Device Type", "Initial Referrer",
    "Initial Landing Page", "Initial Country", "Initial Region", "Initial City",
    "Initial UTM Source", "Initial UTM Medium", "Initial UTM Campaign", "Initial UTM Term",
    "Initial UTM Content", "Initial Marketing Channel",
}  # fmt: skip


def user_operand(users: Any, name: str, dialect: str) -> Operand:
    """The user property `name` as SQL over `users` (the users table, or a table with its
    identity, email, user_id, autocaptured and properties columns)."""
    lowered = name.lower()
    if lowered in ("identity",):
        return TextColumn(users.c.identity, dialect)
    if lowered in ("userid", "user id"):
        return IntegerColumn(users.c.user_id, dialect)
    if lowered == "email":
        return TextColumn(users.c.email, dialect)
    if name in AUTOCAPTURED:
        return json_operand(users.c.autocaptured, name, dialect)
    return json_operand(users.c.properties, name, dialect)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Exactly one way of giving a range: the last N days, or from and/or to (µs)."""

    last_days: int | None = None
    from_us: int | None = None
    to_us: int | None = None

    def checked(self, field: str) -> TimeRange:
        if self.last_days is not None:
            if self.from_us is not None or self.to_us is not None:
                raise InvalidInput(
                    "give either lastDays or from/to, not both", field=field, code="INVALID_FILTER"
                )
            if not 1 <= self.last_days <= MAX_LAST_DAYS:
                raise InvalidInput(
                    f"lastDays must be between 1 and {MAX_LAST_DAYS}",
                    field=f"{field}.lastDays",
                    code="INVALID_FILTER",
                )
        elif self.from_us is None and self.to_us is None:
            raise InvalidInput(
                "give lastDays, or from and/or to", field=field, code="INVALID_FILTER"
            )
        if self.from_us is not None and self.to_us is not None and self.from_us > self.to_us:
            raise InvalidInput("`from` is after `to`", field=f"{field}.from", code="INVALID_FILTER")
        return self

    def bounds(self, now_us: int) -> tuple[int | None, int | None]:
        """(earliest, latest) in µs, inclusive; None where open."""
        if self.last_days is not None:
            return now_us - self.last_days * DAY_US, None
        return self.from_us, self.to_us


LAST_7_DAYS = TimeRange(last_days=7)


@dataclass(frozen=True, slots=True)
class EventMatch:
    """Which events: a definition or a raw type, narrowed by property conditions."""

    definition_id: int | None = None
    type: str | None = None
    where: tuple[PropertyCondition, ...] = ()

    def checked(self, field: str) -> EventMatch:
        if (self.definition_id is None) == (self.type is None):
            raise InvalidInput(
                "give exactly one of definitionId or type", field=field, code="INVALID_FILTER"
            )
        within_limits(FilterSize.of_conditions(self.where), field)
        for index, condition in enumerate(self.where):
            condition.checked(f"{field}.where[{index}]")
        return self


@dataclass(frozen=True, slots=True)
class EventCondition:
    """Users who did (or did not do) an event at least N times in a time range."""

    event: EventMatch
    did: bool = True
    at_least: int = 1
    time: TimeRange | None = None

    def checked(self, field: str) -> EventCondition:
        self.event.checked(f"{field}.event")
        if not 1 <= self.at_least <= MAX_AT_LEAST:
            raise InvalidInput(
                f"atLeast must be between 1 and {MAX_AT_LEAST}",
                field=f"{field}.atLeast",
                code="INVALID_FILTER",
            )
        if self.time is not None:
            self.time.checked(f"{field}.time")
        return self


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Everything it holds is ANDed; `any_of` is an OR of nested filters."""

    seen: TimeRange | None = None
    properties: tuple[PropertyCondition, ...] = ()
    events: tuple[EventCondition, ...] = ()
    any_of: tuple[UserFilter, ...] = ()
    segment_id: int | None = None
    # The users a static segment lists: never sent by a client, it stands for a static
    # segment among the named segments a compiler holds (services/segments.resolve_filters).
    members_of: int | None = None

    def checked(self, field: str = "filter", depth: int = 0) -> UserFilter:
        """This filter, or InvalidInput naming the field at fault (sizes first, cheaply)."""
        if depth == 0:
            within_limits(expanded_size(self, {}), field)
        if depth > MAX_DEPTH:
            raise InvalidInput(
                f"anyOf nests at most {MAX_DEPTH} levels", field=field, code="INVALID_FILTER"
            )
        if self.seen is not None:
            self.seen.checked(f"{field}.seen")
        for index, condition in enumerate(self.properties):
            condition.checked(f"{field}.properties[{index}]")
        for index, event in enumerate(self.events):
            event.checked(f"{field}.events[{index}]")
        for index, nested in enumerate(self.any_of):
            nested.checked(f"{field}.anyOf[{index}]", depth + 1)
        return self


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """The Sessions page filter (SPEC §6)."""

    time: TimeRange | None = None
    event: EventMatch | None = None
    user_id: int | None = None
    identity: str | None = None
    user_properties: tuple[PropertyCondition, ...] = ()
    sources: tuple[str, ...] = ()
    include_server_only: bool = False
    shape: SessionShape = SessionShape()

    def size(self) -> FilterSize:
        """Its property conditions, and its event condition if any (see filter_size)."""
        where = self.event.where if self.event is not None else ()
        counted = FilterSize.of_conditions((*self.user_properties, *where))
        return counted + FilterSize(conditions=int(self.event is not None))

    def checked(self, field: str = "filter") -> SessionFilter:
        within_limits(self.size(), field)
        if self.time is not None:
            self.time.checked(f"{field}.time")
        if self.event is not None:
            self.event.checked(f"{field}.event")
        if self.user_id is not None and self.identity is not None:
            raise InvalidInput(
                "give at most one of userId or identity",
                field=f"{field}.userId",
                code="INVALID_FILTER",
            )
        for index, condition in enumerate(self.user_properties):
            condition.checked(f"{field}.userProperties[{index}]")
        return replace(self, shape=self.shape.checked(field))


@dataclass(frozen=True, slots=True)
class UserSessionFilter:
    """Narrowing of one user's sessions."""

    time: TimeRange | None = None
    event: EventMatch | None = None
    sources: tuple[str, ...] = ()
    shape: SessionShape = SessionShape()

    def checked(self, field: str = "filter") -> UserSessionFilter:
        if self.time is not None:
            self.time.checked(f"{field}.time")
        if self.event is not None:
            self.event.checked(f"{field}.event")
        return replace(self, shape=self.shape.checked(field))


# A hook for event matches by definition: returns the condition "event row is matched by
# definition d" for an events table alias. Set by services.definitions when it is loaded.
DefinitionCondition = Callable[[Any, int, int], ColumnElement[bool]]


@dataclass(slots=True)
class Compiler:
    """Compiles filters of one environment, at one moment, for one SQL dialect."""

    environment_id: int
    dialect: str
    now_us: int
    definition_condition: DefinitionCondition | None = None
    # Filters of the segments the compiled filters name (see services.segments).
    segments: dict[int, UserFilter] = field(default_factory=dict)
    _aliases: int = field(default=0)

    # ---------------------------------------------------------------- time

    def within(self, column: Any, time: TimeRange | None) -> list[ColumnElement[bool]]:
        if time is None:
            return []
        low, high = time.bounds(self.now_us)
        found = []
        if low is not None:
            found.append(column >= low)
        if high is not None:
            found.append(column <= high)
        return found

    # ---------------------------------------------------------------- users

    def users(
        self,
        user_filter: UserFilter,
        *,
        default_seen: TimeRange | None = LAST_7_DAYS,
        inherited_time: TimeRange | None = None,
        per_user: bool = False,
    ) -> list[ColumnElement[bool]]:
        """Conditions on the users table for `user_filter`.

        Event conditions without a time range use the filter's `seen` range; a nested
        filter without one inherits the enclosing filter's. `per_user` compiles event
        conditions as probes of each user's events (see `did`).
        """
        seen = user_filter.seen or default_seen
        event_time = seen or inherited_time
        conditions = [self.seen(seen)] if seen is not None else []
        conditions += [self.user_property(c) for c in user_filter.properties]
        conditions += [
            self.did(c, default_time=event_time, per_user=per_user) for c in user_filter.events
        ]
        if user_filter.members_of is not None:
            conditions.append(self.members(user_filter.members_of))
        if user_filter.segment_id is not None:
            saved = self.segments.get(user_filter.segment_id)
            if saved is None:
                conditions.append(false())
            elif saved.members_of is not None:
                # A static segment is its list, whenever its members were last seen.
                conditions.append(self.members(saved.members_of))
            else:
                # A segment is a whole filter of its own: its seen range defaults to 7 days.
                conditions += self.users(saved, per_user=per_user)
        if user_filter.any_of:
            branches = [
                and_(
                    true(),
                    *self.users(
                        nested, default_seen=None, inherited_time=event_time, per_user=per_user
                    ),
                )
                for nested in user_filter.any_of
            ]
            conditions.append(or_(*branches))
        return conditions

    def members(self, segment_id: int) -> ColumnElement[bool]:
        """Users listed in the static segment (segment_members, co-located with users)."""
        return segment_members.listed(self.environment_id, segment_id)

    def names_events(self, user_filter: UserFilter) -> bool:
        """Whether `user_filter` (with the segments it names) holds an event condition."""
        saved = (
            self.segments.get(user_filter.segment_id)
            if user_filter.segment_id is not None
            else None
        )
        return (
            bool(user_filter.events)
            or (saved is not None and self.names_events(saved))
            or any(self.names_events(nested) for nested in user_filter.any_of)
        )

    def seen(self, time: TimeRange) -> ColumnElement[bool]:
        """Users with activity in the range (users without events: created in it)."""
        low, high = time.bounds(self.now_us)
        conditions = []
        if low is not None:
            conditions.append(U.c.last_seen_us >= low)
        if high is not None:
            conditions.append(U.c.first_seen_us <= high)
            in_range = [E.c.time_us <= high] + ([E.c.time_us >= low] if low is not None else [])
            conditions.append(
                or_(
                    U.c.last_seen_us <= high,
                    exists().where(
                        E.c.environment_id == self.environment_id,
                        E.c.user_id == U.c.user_id,
                        *in_range,
                    ),
                )
            )
        return and_(true(), *conditions)

    def user_property(self, condition: PropertyCondition) -> ColumnElement[bool]:
        return condition_sql(condition, user_operand(U, condition.property, self.dialect))

    def did(
        self, condition: EventCondition, *, default_time: TimeRange | None, per_user: bool = False
    ) -> ColumnElement[bool]:
        """Users who did the event at least N times (or did not, when `did` is false).

        Set-wise by default, driven from the events side (the (environment, type, time)
        index): every user who did it, grouped and counted; the plan for counting all
        members. `per_user` probes one user's events instead (the (environment, user, type,
        time) index), stopping at the Nth match: the plan for a page of users scanned in
        list order, where the first users scanned usually fill the page.
        """
        events = E.alias(self._alias("ev"))
        matching = [
            events.c.environment_id == self.environment_id,
            *self.event_match(condition.event, events),
            *self.within(events.c.time_us, condition.time or default_time),
        ]
        if per_user:
            done = self._probe(events, matching, condition.at_least)
        else:
            doers = select(events.c.user_id).where(*matching)
            if condition.at_least > 1:
                doers = doers.group_by(events.c.user_id).having(func.count() >= condition.at_least)
            done = U.c.user_id.in_(doers)
        return done if condition.did else not_(done)

    @staticmethod
    def _probe(
        events: Any, matching: list[ColumnElement[bool]], at_least: int
    ) -> ColumnElement[bool]:
        """The user of the enclosing users row has at least `at_least` `matching` events."""
        own = [events.c.user_id == U.c.user_id, *matching]
        if at_least == 1:
            return exists().where(*own)
        # Counting stops at `at_least`: LIMIT inside, count outside.
        enough = select(events.c.id).where(*own).limit(at_least).correlate(U).subquery()
        return select(func.count()).select_from(enough).scalar_subquery() >= at_least

    def event_match(self, match: EventMatch, events: Any) -> list[ColumnElement[bool]]:
        """Conditions on an events table (alias) for the events `match` selects."""
        conditions: list[ColumnElement[bool]] = []
        if match.type is not None:
            conditions.append(events.c.type == match.type)
        if match.definition_id is not None:
            if self.definition_condition is None:
                conditions.append(false())
            else:
                conditions.append(
                    self.definition_condition(events, self.environment_id, match.definition_id)
                )
        conditions += [
            condition_sql(c, json_operand(events.c.properties, c.property, self.dialect))
            for c in match.where
        ]
        return conditions

    # ---------------------------------------------------------------- sessions

    def session_has(self, match: EventMatch, sessions: Any = S) -> ColumnElement[bool]:
        """Sessions containing an event that `match` selects (probing each session)."""
        events = E.alias(self._alias("se"))
        return exists().where(
            events.c.environment_id == self.environment_id,
            events.c.user_id == sessions.c.user_id,
            events.c.session_id == sessions.c.id,
            *self.event_match(match, events),
        )

    def sessions_holding(self, match: EventMatch, since_us: int | None) -> ColumnElement[bool]:
        """Sessions containing a matching event, found from the matching events' side.

        A session starting at or after `since_us` holds only events from then on, so the
        (environment, type, time) index bounds the search.
        """
        events = E.alias(self._alias("sh"))
        found = select(events.c.user_id, events.c.session_id).where(
            events.c.environment_id == self.environment_id,
            *self.event_match(match, events),
            *([events.c.time_us >= since_us] if since_us is not None else []),
        )
        return tuple_(S.c.user_id, S.c.id).in_(found)

    def sessions(
        self, session_filter: SessionFilter, *, user_id: int | None
    ) -> list[ColumnElement[bool]]:
        """Conditions on the sessions table for the Sessions page; `user_id` if one is named."""
        conditions = self.within(S.c.start_us, session_filter.time or LAST_7_DAYS)
        if user_id is not None:
            conditions.append(S.c.user_id == user_id)
        if session_filter.sources:
            conditions.append(S.c.source.in_(session_filter.sources))
        if session_filter.event is not None:
            since, _ = (session_filter.time or LAST_7_DAYS).bounds(self.now_us)
            conditions.append(self.sessions_holding(session_filter.event, since))
        if session_filter.user_properties:
            conditions.append(
                exists().where(
                    U.c.environment_id == self.environment_id,
                    U.c.user_id == S.c.user_id,
                    *[self.user_property(c) for c in session_filter.user_properties],
                )
            )
        conditions += session_filter.shape.conditions(self.dialect)
        narrowed = session_filter.event is not None or bool(session_filter.user_properties)
        if narrowed and user_id is None and not session_filter.include_server_only:
            conditions.append(S.c.origin == "CLIENT")
        return conditions

    def user_sessions(self, session_filter: UserSessionFilter | None) -> list[ColumnElement[bool]]:
        """Conditions narrowing one user's sessions (all origins)."""
        if session_filter is None:
            return []
        conditions = self.within(S.c.start_us, session_filter.time)
        if session_filter.sources:
            conditions.append(S.c.source.in_(session_filter.sources))
        if session_filter.event is not None:
            conditions.append(self.session_has(session_filter.event))
        conditions += session_filter.shape.conditions(self.dialect)
        return conditions

    def _alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"
