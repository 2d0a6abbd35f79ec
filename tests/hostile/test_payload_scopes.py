"""An ingest key (the Segment write key, public in browser SDKs) reads nothing stored through
mutation payloads (issue 17, finding 3); read and admin keys still see everything.

Every field of every ingestion payload, and every field of the types they hold, is tried
with an ingest key on a production server: open fields (graph/scopes.OPEN_FIELDS) answer,
every other one refuses the whole operation, before it runs, with FORBIDDEN naming the field
and the scope it needs. The cases come from the schema, so a new field is covered (closed)
the day it is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from graphql import GraphQLNonNull, GraphQLObjectType, get_named_type

from graph.schema import schema
from graph.scopes import INGEST_FIELDS, OPEN_FIELDS
from tests.server.conftest import Tenants, tenants  # noqa: F401 (the fixture)

VICTIM = "victim@example.com"
SECRET = "s3cret-plan"
# An argument value for required arguments of fields (User.property(name:) and the like).
ARGUMENTS = {"String": '"plan"', "Int": "1", "Boolean": "true", "ID": '"x"'}
# (benign call, the same call with inputs that must never be stored).
CALLS: dict[str, tuple[str, str]] = {
    "track": (
        'track(input: {event: "Login", userId: "7"})',
        'track(input: {event: "Refused", userId: "999"})',
    ),
    "trackBatch": (
        'trackBatch(events: [{event: "Login", userId: "7"}])',
        'trackBatch(events: [{event: "Refused", userId: "999"}])',
    ),
    "identify": (
        'identify(input: {userId: "7", identity: "seven"})',
        'identify(input: {userId: "999", identity: "ghost"})',
    ),
    "addUserProperties": (
        f'addUserProperties(input: {{identity: "{VICTIM}", properties: {{}}}})',
        f'addUserProperties(input: {{identity: "{VICTIM}", properties: {{evil: true}}}})',
    ),
    "addUserPropertiesBatch": (
        f'addUserPropertiesBatch(users: [{{identity: "{VICTIM}", properties: {{}}}}])',
        f'addUserPropertiesBatch(users: [{{identity: "{VICTIM}", properties: {{evil: true}}}}])',
    ),
}
VICTIM_HISTORY = """{ user(identity: "%s") { userId identity properties sessionCount eventCount
  sessions { edges { node { id landingPage
    events { edges { node { type properties } } } } } } } }"""


def _call(field: Any, name: str) -> str:
    """`name` with its required arguments filled in, and `{ __typename }` under an object."""
    required = [
        f"{arg}: {ARGUMENTS[get_named_type(a.type).name]}"
        for arg, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull)
    ]
    called = f"{name}({', '.join(required)})" if required else name
    return f"{called} {{ __typename }}" if _object(field) else called


def _object(field: Any) -> GraphQLObjectType | None:
    named = get_named_type(field.type)
    return named if isinstance(named, GraphQLObjectType) else None


def selections(payload: GraphQLObjectType) -> Iterator[tuple[str, str | None]]:
    """(selection of the payload, the `Type.field` an ingest key is refused, or None)."""
    for name, field in payload.fields.items():
        opened = name in OPEN_FIELDS.get(payload.name, ())
        held = _object(field)
        if held is None:
            yield name, None if opened else f"{payload.name}.{name}"
            continue
        for inner, inner_field in held.fields.items():
            if not opened:
                refused: str | None = f"{payload.name}.{name}"
            elif inner in OPEN_FIELDS.get(held.name, ()):
                refused = None
            else:
                refused = f"{held.name}.{inner}"
            yield f"{name} {{ {_call(inner_field, inner)} }}", refused


def payload_of(mutation: str) -> GraphQLObjectType:
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    payload = get_named_type(mutation_type.fields[mutation].type)
    assert isinstance(payload, GraphQLObjectType)
    return payload


async def _seed_victim(tenants: Tenants) -> None:  # noqa: F811
    admin = tenants.alpha.keys["admin"]
    await tenants.data(
        admin,
        """mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }""",
        e=[
            {
                "event": "pageview",
                "identity": VICTIM,
                "source": "WEB",
                "properties": {"path": "/billing", "card": "4242"},
            }
        ],
    )
    await tenants.data(
        admin,
        f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}",
             properties: {{plan: "{SECRET}"}}}}) {{ errors {{ code }} }} }}""",
    )


def _forbidden(response: httpx.Response, field: str) -> None:
    body = response.json()
    assert response.status_code == 403, (field, body)
    assert body.get("data") is None, body
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "FORBIDDEN", "requiredScope": "read", "field": field}
    ], body
    assert "scope read" in body["errors"][0]["message"]
    assert SECRET not in response.text and "4242" not in response.text


async def test_the_original_attack_is_refused_and_nothing_leaks(tenants: Tenants) -> None:  # noqa: F811
    await _seed_victim(tenants)
    ingest = tenants.alpha.keys["ingest"]
    attacks = {
        "User.properties": f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}",
              properties: {{}}}}) {{ user {{ properties sessions {{ edges {{ node {{
              events {{ edges {{ node {{ properties }} }} }} }} }} }} }} }} }}""",
        "User.sessions": f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}",
              properties: {{}}}}) {{ user {{ id sessions {{ totalCount }} }} }} }}""",
        # Through a fragment spread twice, an inline fragment, an alias.
        "User.displayName": f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}",
              properties: {{}}}}) {{ user {{ ...Who ...Who }} }} }}
              fragment Who on User {{ id ... on User {{ name: displayName }} }}""",
        "Event.session": """mutation { track(input: {event: "x", userId: "999"}) {
              event { id session { user { properties } } } } }""",
        "Event.user": """mutation { track(input: {event: "x", userId: "999"}) {
              event { user { id } } } }""",
        "User.identity": """mutation { identify(input: {userId: "999", identity: "ghost"}) {
              user { identity } } }""",
        "User.propertyList": f"""mutation {{ P: addUserPropertiesBatch(users: [{{identity:
              "{VICTIM}", properties: {{}}}}]) {{ accepted }}
              Q: addUserProperties(input: {{identity: "{VICTIM}", properties: {{}}}}) {{
              user {{ propertyList {{ name value }} }} }} }}""",
    }
    for field, attack in attacks.items():
        _forbidden(await tenants.graphql(ingest, attack), field)
    # With variables and an operation name too (how SDKs send it).
    response = await tenants.http.post(
        "/graphql",
        json={
            "query": """mutation Steal($who: String!) { addUserProperties(input:
                {identity: $who, properties: {}}) { errors { code } user { firstSession {
                landingPage } } } }""",
            "variables": {"who": VICTIM},
            "operationName": "Steal",
        },
        headers={"authorization": f"Bearer {ingest}"},
    )
    _forbidden(response, "User.firstSession")
    # Nothing ran: the victim is as seeded, and the refused writes stored nothing.
    victim = (await tenants.data(tenants.alpha.keys["read"], VICTIM_HISTORY % VICTIM))["user"]
    assert victim["properties"]["plan"] == SECRET and victim["eventCount"] == 1
    read = tenants.alpha.keys["read"]
    nobody = await tenants.data(
        read, '{ a: user(userId: "999") { id } b: user(identity: "ghost") { id } }'
    )
    assert nobody == {"a": None, "b": None}
    # What an ingest key may see of the user it wrote to: its ids.
    allowed = await tenants.data(
        ingest,
        f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}", properties: {{}}}}) {{
              errors {{ code }} user {{ __typename id userId }} }} }}""",
    )
    assert allowed["addUserProperties"]["user"]["userId"] == victim["userId"]


async def test_every_ingestion_payload_field_with_an_ingest_key(tenants: Tenants) -> None:  # noqa: F811
    await _seed_victim(tenants)
    ingest = tenants.alpha.keys["ingest"]
    assert set(CALLS) == set(INGEST_FIELDS), "add the new ingestion mutation to CALLS"
    tried = refused = 0
    for mutation in INGEST_FIELDS:
        benign, marked = CALLS[mutation]
        for selection, forbidden in selections(payload_of(mutation)):
            tried += 1
            if forbidden is None:
                response = await tenants.graphql(
                    ingest, f"mutation {{ {benign} {{ {selection} }} }}"
                )
                body = response.json()
                assert response.status_code == 200 and not body.get("errors"), (selection, body)
                assert body["data"][mutation] is not None
            else:
                refused += 1
                response = await tenants.graphql(
                    ingest, f"mutation {{ {marked} {{ {selection} }} }}"
                )
                _forbidden(response, forbidden)
    assert refused > 40 and tried - refused >= 15, (tried, refused)
    read = tenants.alpha.keys["read"]
    victim = (await tenants.data(read, VICTIM_HISTORY % VICTIM))["user"]
    assert "evil" not in victim["properties"]
    nobody = await tenants.data(
        read, '{ a: user(userId: "999") { id } b: user(identity: "ghost") { id } }'
    )
    assert nobody == {"a": None, "b": None}


async def test_admin_keys_see_every_payload_field_and_read_keys_every_field(
    tenants: Tenants,  # noqa: F811
) -> None:
    await _seed_victim(tenants)
    admin, read = tenants.alpha.keys["admin"], tenants.alpha.keys["read"]
    for mutation in INGEST_FIELDS:
        benign, _ = CALLS[mutation]
        everything = " ".join(selection for selection, _ in selections(payload_of(mutation)))
        response = await tenants.graphql(admin, f"mutation {{ {benign} {{ {everything} }} }}")
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), (mutation, body)
    stolen = await tenants.data(
        admin,
        f"""mutation {{ addUserProperties(input: {{identity: "{VICTIM}", properties: {{}}}}) {{
              user {{ properties sessions {{ edges {{ node {{ events {{ edges {{ node {{
              properties }} }} }} }} }} }} }} }} }}""",
    )
    user = stolen["addUserProperties"]["user"]
    assert user["properties"]["plan"] == SECRET
    assert (
        user["sessions"]["edges"][0]["node"]["events"]["edges"][0]["node"]["properties"]["card"]
        == "4242"
    )
    victim = (await tenants.data(read, VICTIM_HISTORY % VICTIM))["user"]
    assert victim["properties"]["plan"] == SECRET
    event = victim["sessions"]["edges"][0]["node"]["events"]["edges"][0]["node"]
    assert event["properties"]["card"] == "4242"
    # A read key calls no mutation, whatever it selects.
    refused = await tenants.graphql(read, f"mutation {{ {CALLS['track'][0]} {{ accepted }} }}")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["field"] == "track"
