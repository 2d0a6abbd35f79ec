"""Identify, merge and user properties through the GraphQL API (SPEC §1)."""

from __future__ import annotations

import pytest

from tests.support import USER_TIMELINE, Api

IDENTIFY = """
mutation($userId: String!, $identity: String!) {
  identify(input: {userId: $userId, identity: $identity}) {
    merged errors { code field message } user { userId identity sessionCount eventCount }
  }
}"""
ADD_PROPERTIES = """
mutation($input: UserPropertiesInput!) {
  addUserProperties(input: $input) {
    errors { code field message } user { userId identity displayName properties }
  }
}"""


def _web(user: str, at: str, key: str, **extra: object) -> dict:
    return {
        "event": "pageview",
        "userId": user,
        "source": "WEB",
        "timestamp": at,
        "properties": {"k": key},
        **extra,
    }


async def test_identify_an_anonymous_user_with_a_new_identity(api: Api) -> None:
    await api.track_batch([_web("11", "2026-03-02T10:00:00Z", "a")])
    result = (await api.gql(IDENTIFY, userId="11", identity="ann@example.com"))["identify"]
    assert result["errors"] == [] and result["merged"] is False
    assert result["user"]["identity"] == "ann@example.com"
    by_identity = (await api.gql(USER_TIMELINE, identity="ann@example.com"))["user"]
    assert by_identity["userId"] == "11" and by_identity["eventCount"] == 1


async def test_merge_moves_every_event_and_the_old_user_id_keeps_routing(api: Api) -> None:
    await api.track_batch(
        [_web("21", "2026-03-02T10:00:00Z", "b1"), _web("21", "2026-03-02T10:05:00Z", "b2")]
    )
    await api.gql(IDENTIFY, userId="21", identity="bob")
    await api.gql(ADD_PROPERTIES, input={"identity": "bob", "properties": {"plan": "pro"}})
    # An anonymous visitor (later known to be bob) browsed earlier, on another device.
    await api.track_batch(
        [
            _web("22", "2026-03-02T09:00:00Z", "a1"),
            _web("22", "2026-03-02T09:20:00Z", "a2"),
            _web("22", "2026-03-02T10:10:00Z", "a3"),
        ]
    )
    await api.gql(
        ADD_PROPERTIES, input={"userId": "22", "properties": {"plan": "free", "color": "red"}}
    )
    before = [(await api.gql(USER_TIMELINE, userId=u))["user"]["eventCount"] for u in ("21", "22")]

    result = (await api.gql(IDENTIFY, userId="22", identity="bob"))["identify"]
    assert result["merged"] is True and result["errors"] == []
    merged = (await api.gql(USER_TIMELINE, identity="bob"))["user"]
    assert merged["userId"] == "21"
    assert merged["eventCount"] == sum(before) == 5
    # Sessions are those of the union: 09:00-09:20 and 10:00-10:10 (a3 joins b1, b2).
    sessions = sorted(
        sorted(e["node"]["properties"]["k"] for e in s["node"]["events"]["edges"])
        for s in merged["sessions"]["edges"]
    )
    assert sessions == [["a1", "a2"], ["a3", "b1", "b2"]]
    assert merged["firstSeen"].startswith("2026-03-02T09:00:00")
    assert merged["properties"]["plan"] == "pro"  # the identified user's value wins
    assert merged["properties"]["color"] == "red"
    # The merged-away userId routes to bob, for reads and for new events.
    assert (await api.gql(USER_TIMELINE, userId="22"))["user"]["userId"] == "21"
    await api.track_batch([_web("22", "2026-03-02T12:00:00Z", "late")])
    assert (await api.gql(USER_TIMELINE, identity="bob"))["user"]["eventCount"] == 6


async def test_already_identified_user_is_a_user_error_and_changes_nothing(api: Api) -> None:
    await api.track_batch([_web("31", "2026-03-02T10:00:00Z", "c")])
    await api.gql(IDENTIFY, userId="31", identity="carol")
    result = (await api.gql(IDENTIFY, userId="31", identity="carla"))["identify"]
    assert result["user"] is None and result["merged"] is False
    assert [e["code"] for e in result["errors"]] == ["ALREADY_IDENTIFIED"]
    assert (await api.gql(USER_TIMELINE, identity="carla"))["user"] is None
    assert (await api.gql(USER_TIMELINE, userId="31"))["user"]["identity"] == "carol"


async def test_identify_unknown_user(api: Api) -> None:
    result = (await api.gql(IDENTIFY, userId="999", identity="dave"))["identify"]
    assert [e["code"] for e in result["errors"]] == ["UNKNOWN_USER"]
    assert (await api.gql(USER_TIMELINE, identity="dave"))["user"] is None


@pytest.mark.parametrize(
    "placeholder", ["null", "undefined", "Anonymous", "0", "", "[object Object]", "NULL"]
)
async def test_placeholder_identities_are_refused(api: Api, placeholder: str) -> None:
    await api.track_batch([_web("41", "2026-03-02T10:00:00Z", "p")])
    result = (await api.gql(IDENTIFY, userId="41", identity=placeholder))["identify"]
    assert [e["code"] for e in result["errors"]] == ["INVALID_IDENTITY"]
    assert (await api.gql(USER_TIMELINE, userId="41"))["user"]["identity"] is None


async def test_add_user_properties_creates_a_user_and_sets_email(api: Api) -> None:
    result = await api.gql(
        ADD_PROPERTIES,
        input={"identity": "erin", "properties": {"email": "erin@example.com", "seats": 3}},
    )
    user = result["addUserProperties"]["user"]
    assert user["identity"] == "erin" and user["displayName"] == "erin"
    assert user["properties"]["Email"] == "erin@example.com"
    assert user["properties"]["seats"] == 3
    again = await api.gql(ADD_PROPERTIES, input={"identity": "erin", "properties": {"seats": 4}})
    assert again["addUserProperties"]["user"]["properties"]["seats"] == 4


@pytest.mark.parametrize("key", ["id", "userId", "IDENTITY", "UserID"])
async def test_reserved_property_keys_are_refused(api: Api, key: str) -> None:
    result = await api.gql(ADD_PROPERTIES, input={"identity": "fay", "properties": {key: "x"}})
    errors = result["addUserProperties"]["errors"]
    assert [e["code"] for e in errors] == ["RESERVED_PROPERTY"]
    assert (await api.gql(USER_TIMELINE, identity="fay"))["user"] is None


async def test_client_event_with_user_id_and_identity_identifies(api: Api) -> None:
    await api.track_batch([_web("51", "2026-03-02T10:00:00Z", "g1")])
    await api.track_batch([_web("52", "2026-03-02T11:00:00Z", "g2", identity="gus")])
    await api.track_batch([_web("51", "2026-03-02T12:00:00Z", "g3", identity="gus")])
    gus = (await api.gql(USER_TIMELINE, identity="gus"))["user"]
    assert gus["userId"] == "52" and gus["eventCount"] == 3


async def test_server_event_with_identity_creates_the_user(api: Api) -> None:
    result = await api.track_batch(
        [{"event": "Invoice Paid", "identity": "hal", "timestamp": "2026-03-02T10:00:00Z"}]
    )
    assert result["accepted"] == 1
    hal = (await api.gql(USER_TIMELINE, identity="hal"))["user"]
    assert hal["sessions"]["edges"][0]["node"]["origin"] == "SERVER"
    assert int(hal["userId"]) > 0
