"""How large a filter is once the segments it names are inlined, and the limits on that.

A users filter compiles to one SQL condition per property or event condition, with each
segment it names inlined where it is named (services/filters.Compiler). Measured here in
linear time, each segment once, so that a segment naming another twice per level (2^depth
once inlined) is refused by its size, in microseconds, instead of compiled. The limits are
in services/limits.py; segments are checked when saved and filters when compiled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.conditions import LIST_VALUE, PropertyCondition
from services.errors import InvalidInput
from services.limits import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_VALUES,
    MAX_REQUEST_FILTER_CONDITIONS,
    MAX_SEGMENT_DEPTH,
)

TOO_COMPLEX = "FILTER_TOO_COMPLEX"


# What a size is read from: services/filters.UserFilter, described here rather than imported,
# since services/filters imports this module (the house has no import circles).
class _EventMatch(Protocol):
    @property
    def where(self) -> tuple[PropertyCondition, ...]: ...


class _EventCondition(Protocol):
    @property
    def event(self) -> _EventMatch: ...


class UserFilter(Protocol):
    """The parts of a users filter its size counts."""

    @property
    def properties(self) -> tuple[PropertyCondition, ...]: ...
    @property
    def events(self) -> Sequence[_EventCondition]: ...
    @property
    def any_of(self) -> Sequence[UserFilter]: ...
    @property
    def segment_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class FilterSize:
    """What a filter costs to compile, with the segments it names expanded where named.

    Counts stop a little past their limits (`capped`): a segment naming another twice per
    level would otherwise count 2^depth.
    """

    conditions: int = 0
    values: int = 0
    segment_depth: int = 0

    @staticmethod
    def of_conditions(conditions: tuple[PropertyCondition, ...]) -> FilterSize:
        """The size of a list of property conditions (IN lists count their values)."""
        values = sum(
            len(c.value)
            for c in conditions
            if c.op in LIST_VALUE and isinstance(c.value, list | tuple)
        )
        return FilterSize(len(conditions), values).capped()

    def __add__(self, other: FilterSize) -> FilterSize:
        return FilterSize(
            self.conditions + other.conditions,
            self.values + other.values,
            max(self.segment_depth, other.segment_depth),
        ).capped()

    def capped(self) -> FilterSize:
        return FilterSize(
            min(self.conditions, MAX_FILTER_CONDITIONS + 1),
            min(self.values, MAX_FILTER_VALUES + 1),
            min(self.segment_depth, MAX_SEGMENT_DEPTH + 1),
        )


class SizeMeasure:
    """Sizes of filters with the segments they name inlined where they name them.

    Linear in the filters: each segment is measured once, then counted at every place it is
    named. A segment missing from `segments` counts nothing (it compiles to `false`); a cycle
    (refused when saved, but two updates may race) counts as too deep.
    """

    def __init__(self, segments: Mapping[int, UserFilter]):
        self.segments = segments
        self._measured: dict[int, FilterSize] = {}
        self._measuring: set[int] = set()

    def segment(self, segment_id: int) -> FilterSize:
        """The size of naming the segment: its filter's, one level deeper."""
        if segment_id in self._measuring:
            return FilterSize(segment_depth=MAX_SEGMENT_DEPTH + 1)
        if segment_id not in self._measured:
            saved = self.segments.get(segment_id)
            self._measuring.add(segment_id)
            inner = self.of(saved) if saved is not None else FilterSize()
            self._measuring.discard(segment_id)
            self._measured[segment_id] = FilterSize(
                inner.conditions, inner.values, inner.segment_depth + 1
            ).capped()
        return self._measured[segment_id]

    def of(self, written: UserFilter) -> FilterSize:
        """The size of a filter."""
        size = FilterSize.of_conditions(written.properties)
        for condition in written.events:
            size = size + FilterSize(conditions=1) + FilterSize.of_conditions(condition.event.where)
        for nested in written.any_of:
            size = size + self.of(nested)
        if written.segment_id is not None:
            size = size + self.segment(written.segment_id)
        return size


def expanded_size(user_filter: UserFilter, segments: Mapping[int, UserFilter]) -> FilterSize:
    """The size of `user_filter` with the `segments` it names inlined (see SizeMeasure)."""
    return SizeMeasure(segments).of(user_filter)


def within_limits(size: FilterSize, field: str, subject: str = "the filter") -> None:
    """InvalidInput (FILTER_TOO_COMPLEX) naming the limit `size` passes, if it passes one."""
    if size.segment_depth > MAX_SEGMENT_DEPTH:
        message = (
            f"segments named in {subject} name segments more than {MAX_SEGMENT_DEPTH} levels "
            f"deep; the limit is {MAX_SEGMENT_DEPTH}: write the innermost conditions out instead"
        )
    elif size.conditions > MAX_FILTER_CONDITIONS:
        message = (
            f"more than {MAX_FILTER_CONDITIONS} conditions in {subject}, counting every "
            "property, event and `where` condition, and those of each segment named, where it "
            f"is named; the limit is {MAX_FILTER_CONDITIONS}: narrow it, or split it into "
            "several queries"
        )
    elif size.values > MAX_FILTER_VALUES:
        message = (
            f"more than {MAX_FILTER_VALUES} values in the IN and NOT_IN lists of {subject} "
            f"(segments named included); the limit is {MAX_FILTER_VALUES}"
        )
    else:
        return
    raise InvalidInput(message, field=field, code=TOO_COMPLEX)


class RequestBudget:
    """The filter conditions one request has compiled so far (MAX_REQUEST_FILTER_CONDITIONS)."""

    def __init__(self) -> None:
        self.spent = 0

    def spend(self, size: FilterSize, field: str) -> None:
        """Count a filter about to compile; InvalidInput once the request passes the limit."""
        self.spent += size.conditions
        if self.spent > MAX_REQUEST_FILTER_CONDITIONS:
            raise InvalidInput(
                f"this request compiles more than {MAX_REQUEST_FILTER_CONDITIONS} filter "
                f"conditions in all (its lists and segment counts, segments expanded); the "
                f"limit is {MAX_REQUEST_FILTER_CONDITIONS}: ask for fewer filtered lists or "
                "segment counts per request",
                field=field,
                code=TOO_COMPLEX,
            )
