"""DateTime input is read by the standard library first; the values are dateutil's."""

from __future__ import annotations

import dateutil.parser
import pytest

from graph.scalars import parse_datetime

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
    assert parse_datetime(text) == dateutil.parser.isoparse(text)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-11-22T25:00", ""])
def test_refused_as_dateutil_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        dateutil.parser.isoparse(text)
    with pytest.raises(ValueError):
        parse_datetime(text)
