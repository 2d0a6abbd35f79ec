"""`Initial …` user properties (SPEC §7): taken from each user's earliest client session.

A projection of the sessions table onto users.autocaptured, kept by
services/projections.py after new events and merges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Session, User
from services.autocapture import marketing_channel, split_url
from services.identity import ONE_USER, update_users
from services.sql import chunks

S = Session.__table__
U = User.__table__

INITIAL_TRAITS = {
    "browser": "Initial Browser",
    "platform": "Initial Platform",
    "device_type": "Initial Device Type",
    "referrer": "Initial Referrer",
    "landing_page": "Initial Landing Page",
    "country": "Initial Country",
    "region": "Initial Region",
    "city": "Initial City",
}
INITIAL_UTM = {
    "source": "Initial UTM Source",
    "medium": "Initial UTM Medium",
    "campaign": "Initial UTM Campaign",
    "term": "Initial UTM Term",
    "content": "Initial UTM Content",
}


def initial_properties(session: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `Initial …` user properties of SPEC §7 from the user's earliest client session."""
    if session is None:
        return {}
    found: dict[str, Any] = {
        name: session[column]
        for column, name in INITIAL_TRAITS.items()
        if session[column] is not None
    }
    if "Initial Device Type" in found:
        found["Initial Device Type"] = found["Initial Device Type"].title()
    utm = session["utm"] or {}
    found |= {name: utm[key] for key, name in INITIAL_UTM.items() if utm.get(key)}
    landing_domain = split_url(session["landing_page"]).get("domain")
    found["Initial Marketing Channel"] = marketing_channel(
        referrer=session["referrer"], utm=utm, landing_domain=landing_domain
    )
    return found


async def refresh_initial_properties(
    conn: AsyncConnection,
    *,
    environment_id: int,
    user_ids: Iterable[int],
    known: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
) -> None:
    """Recompute the `Initial …` properties of users whose earliest session may have changed.

    `known` gives, for some of them, every session they have (session rows just written for
    users with no earlier events): those are not read back.
    """
    known = known or {}
    users = sorted(set(user_ids))
    earliest_of: dict[int, Mapping[Any, Any] | None] = {
        user: min(
            (s for s in known[user] if s["origin"] == "CLIENT"),
            key=lambda s: (s["start_us"], s["id"]),
            default=None,
        )
        for user in users
        if user in known
    }
    unknown = [user for user in users if user not in known]
    for chunk in chunks(unknown, 400):
        earliest = (
            select(S, _row_number(S).label("rank"))
            .where(
                S.c.environment_id == environment_id, S.c.user_id.in_(chunk), S.c.origin == "CLIENT"
            )
            .subquery()
        )
        rows = await conn.execute(select(earliest).where(earliest.c.rank == 1))
        by_user = {row["user_id"]: row for row in rows.mappings()}
        earliest_of |= {user: by_user.get(user) for user in chunk}
    await update_users(
        conn,
        _SET_AUTOCAPTURED,
        environment_id=environment_id,
        rows=[
            {"user_id": u, "props": initial_properties(session)}
            for u, session in earliest_of.items()
        ],
    )


_SET_AUTOCAPTURED = (
    update(U).where(*ONE_USER).values(autocaptured=bindparam("b_props")),
    text(
        """UPDATE users AS u SET autocaptured = v.props
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(user_id bigint, props jsonb)
WHERE u.environment_id = :env AND u.user_id = v.user_id
  AND u.user_id = ANY(CAST(:users AS bigint[]))"""
    ),
)


def _row_number(table: Any) -> Any:
    return func.row_number().over(
        partition_by=table.c.user_id, order_by=(table.c.start_us, table.c.id)
    )
