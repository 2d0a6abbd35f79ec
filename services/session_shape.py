"""Conditions on a session's own values: entry and exit page, duration, page views.

Part of the Sessions page filter and of a user's sessions filter (services/filters.py). The
pages are stored on the session rows (services/sessionizer.py), so each condition is a plain
column condition; page matches are the StringMatch of definitions (services/matching.py),
compiled by the shared text rules of services/condition_sql.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.sql.elements import ColumnElement

from models import Session
from services.condition_sql import TextColumn, condition_sql
from services.conditions import PropertyCondition
from services.errors import InvalidInput
from services.matching import StringMatch, checked_string_match

S = Session.__table__
MAX_BOUND = 2**31 - 1  # seconds or page views in a session range (a GraphQL Int)
SECOND_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Bounds:
    """An inclusive range of whole numbers (seconds, page views): at least and/or at most."""

    at_least: int | None = None
    at_most: int | None = None

    def checked(self, field: str) -> Bounds:
        for name, value in (("atLeast", self.at_least), ("atMost", self.at_most)):
            if value is not None and not 0 <= value <= MAX_BOUND:
                raise InvalidInput(
                    f"{name} must be between 0 and {MAX_BOUND}",
                    field=f"{field}.{name}",
                    code="INVALID_FILTER",
                )
        if self.at_least is not None and self.at_most is not None:
            if self.at_least > self.at_most:
                raise InvalidInput(
                    "atLeast must not exceed atMost",
                    field=f"{field}.atLeast",
                    code="INVALID_FILTER",
                )
        return self


@dataclass(frozen=True, slots=True)
class SessionShape:
    """Conditions on a session's own values: entry and exit page, duration, page views."""

    entry_page: StringMatch | None = None
    exit_page: StringMatch | None = None
    duration: Bounds | None = None  # whole seconds, as durationSeconds reads
    pageviews: Bounds | None = None

    def checked(self, field: str) -> SessionShape:
        for name, bounds in (("duration", self.duration), ("pageviews", self.pageviews)):
            if bounds is not None:
                bounds.checked(f"{field}.{name}")
        return SessionShape(
            checked_string_match(self.entry_page, f"{field}.entryPage"),
            checked_string_match(self.exit_page, f"{field}.exitPage"),
            self.duration,
            self.pageviews,
        )

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """Conditions on the sessions table's stored entry/exit page, duration and page views."""
        conditions: list[ColumnElement[bool]] = []
        for column, match in ((S.c.entry_page, self.entry_page), (S.c.exit_page, self.exit_page)):
            if match is not None:
                page = PropertyCondition("page", match.op, match.value)
                conditions.append(condition_sql(page, TextColumn(column, dialect)))
        if self.duration is not None:
            # durationSeconds is the whole seconds of end - start: d >= n iff end - start >=
            # n s, and d <= n iff end - start < (n + 1) s.
            length = S.c.end_us - S.c.start_us
            if self.duration.at_least is not None:
                conditions.append(length >= self.duration.at_least * SECOND_US)
            if self.duration.at_most is not None:
                conditions.append(length < (self.duration.at_most + 1) * SECOND_US)
        if self.pageviews is not None:
            if self.pageviews.at_least is not None:
                conditions.append(S.c.pageview_count >= self.pageviews.at_least)
            if self.pageviews.at_most is not None:
                conditions.append(S.c.pageview_count <= self.pageviews.at_most)
        return conditions
