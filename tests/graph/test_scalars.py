"""DateTime input is read by the standard library first; the values are dateutil's, and what
neither reads becomes an UnreadableTime for the caller to refuse."""

from __future__ import annotations

import dateutil.parser
import pytest

from graph.scalars import read_datetime
from services.clock import UnreadableTime, parse_time

FORMS = [
    "2026-11-22T10:00:00Z",
    "2026-11-22T10:00:00.123+02:00",
    "2026-11-22T10:00:00.1234567Z",
    "2026-11-22",
    "2026-11-22 10:00",
    "20261122T100000Z",
    "2026-W47-1",
    "2026-11-22T10",
]


@pytest.mark.parametrize("text", FORMS)
def test_same_value_as_dateutil(text: str) -> None:
    assert parse_time(text) == dateutil.parser.isoparse(text) == read_datetime(text)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-11-22T25:00", ""])
def test_refused_as_dateutil_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        dateutil.parser.isoparse(text)
    with pytest.raises(ValueError):
        parse_time(text)
    assert read_datetime(text) == UnreadableTime(text)


@pytest.mark.parametrize("value", [5, 1.5, True, ["2026-11-22"], {"at": "2026-11-22"}])
def test_values_other_than_text_are_unreadable(value: object) -> None:
    assert read_datetime(value) == UnreadableTime(value)
