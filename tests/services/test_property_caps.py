"""The per-user property caps of a merge (services/limits.py `merged_user_properties`)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services import limits

names = st.text(min_size=1, max_size=40)
values = st.one_of(st.text(max_size=255), st.integers(-(2**63), 2**63 - 1), st.booleans())
users = st.dictionaries(names, values, max_size=60)


def _size(properties: dict[str, Any]) -> int:
    return len(orjson.dumps(properties))


@settings(max_examples=300, deadline=None)
@given(kept=users, merged_in=users, most=st.integers(1, 80), most_bytes=st.integers(2, 6000))
def test_a_merge_keeps_the_identified_users_values_and_stays_within_the_caps(
    kept: dict[str, Any], merged_in: dict[str, Any], most: int, most_bytes: int
) -> None:
    original = (limits.MAX_USER_PROPERTIES, limits.MAX_USER_PROPERTY_BYTES)
    limits.MAX_USER_PROPERTIES, limits.MAX_USER_PROPERTY_BYTES = most, most_bytes
    try:
        merged = limits.merged_user_properties(kept, merged_in)
    finally:
        limits.MAX_USER_PROPERTIES, limits.MAX_USER_PROPERTY_BYTES = original
    assert {k: merged[k] for k in kept} == kept  # all of them, with their values
    added = [k for k in merged if k not in kept]
    assert all(merged[k] == merged_in[k] for k in added)
    assert added == sorted(added)
    if added:  # what was added fits the caps (a user already over them gains nothing)
        assert len(merged) <= most and _size(merged) <= most_bytes
    if len(kept) < most and _size(kept) < most_bytes:
        # Every left-out key would not have fitted: over the count, or too big at its turn.
        for key in sorted(set(merged_in) - set(merged)):
            assert len(merged) >= most or _size({**merged, key: merged_in[key]}) > most_bytes


def test_an_update_that_grows_nothing_is_allowed_over_the_caps() -> None:
    over = {f"k{n}": n for n in range(limits.MAX_USER_PROPERTIES + 5)}
    assert limits.stored_user_properties(over, {"k1": 0})["k1"] == 0
