"""Properties per event and per user are capped (services/limits.py): an item over a cap is
refused alone with TOO_MANY_PROPERTIES naming the field; a merge never fails over them."""

from __future__ import annotations

from typing import Any

from services.limits import MAX_EVENT_PROPERTIES, MAX_USER_PROPERTIES, MAX_USER_PROPERTY_BYTES
from tests.support import USER_TIMELINE, Api

ADD = """mutation($input: UserPropertiesInput!) {
  addUserProperties(input: $input) { user { userId } errors { index field code message } } }"""
ADD_BATCH = """mutation($users: [UserPropertiesInput!]!) {
  addUserPropertiesBatch(users: $users) { accepted errors { index field code message } } }"""
IDENTIFY = """mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) { merged errors { code } } }"""
PROPERTIES = "query($identity: String) { user(identity: $identity) { properties } }"


def _numbered(prefix: str, count: int, value: Any = 1) -> dict[str, Any]:
    return {f"{prefix}{n:04d}": value for n in range(count)}


async def _custom(api: Api, identity: str, prefix: str = "") -> dict[str, Any]:
    """The user's custom properties (these tests name them in lower case; the built-in ones,
    Email, Identity, Date First Seen..., are capitalised) starting with `prefix`."""
    user = (await api.gql(PROPERTIES, identity=identity))["user"]
    assert user is not None
    return {k: v for k, v in user["properties"].items() if k[:1].islower() and k.startswith(prefix)}


async def test_an_event_over_the_cap_is_refused_alone(api: Api) -> None:
    at_cap = {"event": "e", "userId": "3", "properties": _numbered("k", MAX_EVENT_PROPERTIES)}
    over = {**at_cap, "properties": _numbered("k", MAX_EVENT_PROPERTIES + 1)}
    payload = await api.track_batch([over, at_cap])
    assert payload["accepted"] == 1
    [error] = payload["errors"]
    assert (error["index"], error["field"], error["code"]) == (
        0,
        "properties",
        "TOO_MANY_PROPERTIES",
    )
    assert f"the limit is {MAX_EVENT_PROPERTIES} per event" in error["message"]
    user = (await api.gql(USER_TIMELINE, userId="3"))["user"]
    [session] = user["sessions"]["edges"]
    [event] = session["node"]["events"]["edges"]
    assert len(event["node"]["properties"]) == MAX_EVENT_PROPERTIES


async def test_a_user_keeps_at_most_the_cap_of_properties(api: Api) -> None:
    who = "capped@example.com"
    too_many = await api.gql(
        ADD, input={"identity": who, "properties": _numbered("p", MAX_USER_PROPERTIES + 1)}
    )
    [error] = too_many["addUserProperties"]["errors"]
    assert (error["field"], error["code"]) == ("properties", "TOO_MANY_PROPERTIES")
    assert f"the limit is {MAX_USER_PROPERTIES} per call" in error["message"]
    assert (await api.gql(PROPERTIES, identity=who))["user"] is None

    full = _numbered("p", MAX_USER_PROPERTIES)
    assert (await api.gql(ADD, input={"identity": who, "properties": full}))["addUserProperties"][
        "errors"
    ] == []
    # One new key is one too many; Email is not a custom property and still goes in.
    one_more = await api.gql(
        ADD, input={"identity": who, "properties": {"p9999": 1, "email": "x@example.com"}}
    )
    [error] = one_more["addUserProperties"]["errors"]
    assert (
        error["code"] == "TOO_MANY_PROPERTIES"
        and f"{MAX_USER_PROPERTIES} per user" in (error["message"])
    )
    assert (await api.gql(ADD, input={"identity": who, "properties": {"email": "x@ex.com"}}))[
        "addUserProperties"
    ]["errors"] == []
    # Overwriting keeps the count: allowed, up to the size limit.
    overwrite = await api.gql(ADD, input={"identity": who, "properties": _numbered("p", 10, 2)})
    assert overwrite["addUserProperties"]["errors"] == []
    long_values = _numbered("p", MAX_USER_PROPERTIES, "x" * 200)
    too_big = await api.gql(ADD, input={"identity": who, "properties": long_values})
    [error] = too_big["addUserProperties"]["errors"]
    assert (
        error["code"] == "TOO_MANY_PROPERTIES"
        and str(MAX_USER_PROPERTY_BYTES) in (error["message"])
    )
    stored = await _custom(api, who, "p")
    assert stored == {**full, **_numbered("p", 10, 2)}
    user = (await api.gql(PROPERTIES, identity=who))["user"]
    assert user["properties"]["Email"] == "x@ex.com"


async def test_batch_items_over_the_cap_are_refused_alone(api: Api) -> None:
    who = "batch@example.com"
    users = [
        {"identity": who, "properties": _numbered("p", MAX_USER_PROPERTIES - 1)},
        {"identity": who, "properties": {"a": 1, "b": 1}},  # one too many
        {"identity": who, "properties": {"a": 1}},  # exactly the cap
        {"identity": "other@example.com", "properties": _numbered("p", 3)},
        {"identity": who, "properties": {"p0000": "changed"}},
    ]
    payload = (await api.gql(ADD_BATCH, users=users))["addUserPropertiesBatch"]
    assert payload["accepted"] == 4
    assert [(e["index"], e["field"], e["code"]) for e in payload["errors"]] == [
        (1, "properties", "TOO_MANY_PROPERTIES")
    ]
    stored = await _custom(api, who)
    assert len(stored) == MAX_USER_PROPERTIES
    assert stored["a"] == 1 and "b" not in stored and stored["p0000"] == "changed"
    assert len(await _custom(api, "other@example.com")) == 3


async def test_a_merge_over_the_cap_keeps_the_identified_users_properties_first(
    api: Api,
) -> None:
    known = "known@example.com"
    mine = _numbered("a", 900, "identified")
    theirs = {**_numbered("b", 300, "anonymous"), "a0000": "anonymous"}
    await api.gql(ADD, input={"identity": known, "properties": mine})
    await api.gql(ADD, input={"userId": "77", "properties": theirs})
    merged = (await api.gql(IDENTIFY, userId="77", identity=known))["identify"]
    assert merged == {"merged": True, "errors": []}
    stored = await _custom(api, known)
    # All of the identified user's (its values win), then the other's in name order.
    assert stored == {**mine, **_numbered("b", MAX_USER_PROPERTIES - 900, "anonymous")}
    user = (await api.gql('{ user(userId: "77") { identity } }'))["user"]
    assert user == {"identity": known}
