"""The users list sorted by first seen, event count, session count or a user property.

Keyset pages as the default order's (services/listing.py): a cursor holds the user's sort
key, its userId (the tie-breaker, in the same direction) and the snapshot, the first page's
moment S. Every page orders users as of S: a user whose sort keys changed after S
(`users.sorted_us > S`) is placed by its version valid at S (services/user_versions.py),
every other user by its row; users created after S are not listed. So events, identifies and
merges arriving between pages never repeat or skip a user that was there at S.

A property sorts as SPEC §5a reads it (services/condition_sql.py operands): numeric values
first, by number; then the others (strings, booleans as `true`/`false`) by their text form,
in code point order; users without the property last. The direction orders numbers and
texts among themselves; numbers come before texts and missing values last in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Numeric, and_, bindparam, case, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from models import User, UserVersion
from models.property_values import sort_text
from services import user_versions
from services.condition_sql import IntegerColumn, Operand, PostgresJson, SqliteJson, pg_number
from services.errors import InvalidInput
from services.filters import user_operand

U = User.__table__
V = UserVersion.__table__
COLUMNS = {"FIRST_SEEN": "first_seen_us", "EVENT_COUNT": "event_count"}
COLUMNS["SESSION_COUNT"] = "session_count"
FIELDS = ("LAST_SEEN", *COLUMNS, "PROPERTY")
NUMERIC, TEXT, MISSING = 0, 1, 2
BAD = "BAD_USER_INPUT"  # as the other arguments of a list field


@dataclass(frozen=True, slots=True)
class UserOrder:
    """How the users list is sorted; the default is last seen, newest first."""

    field: str = "LAST_SEEN"
    direction: str = "DESC"
    name: str | None = None  # the property, for field PROPERTY

    @property
    def is_default(self) -> bool:
        return self.field == "LAST_SEEN" and self.direction == "DESC"

    @property
    def descending(self) -> bool:
        return self.direction == "DESC"

    def checked(self, field: str = "orderBy") -> UserOrder:
        """The order, or InvalidInput naming the part at fault."""
        if self.field not in FIELDS:
            raise InvalidInput(
                f"sort by one of {', '.join(FIELDS)}", field=f"{field}.field", code=BAD
            )
        if self.direction not in ("ASC", "DESC"):
            raise InvalidInput("direction is ASC or DESC", field=f"{field}.direction", code=BAD)
        if self.field == "PROPERTY" and not self.name:
            raise InvalidInput(
                "field PROPERTY sorts by a user property: name it in `property`",
                field=f"{field}.property",
                code=BAD,
            )
        if self.field != "PROPERTY" and self.name is not None:
            raise InvalidInput(
                f"`property` goes with field PROPERTY only; leave it out to sort by {self.field}",
                field=f"{field}.property",
                code=BAD,
            )
        return self


@dataclass(frozen=True, slots=True)
class OrderCursor:
    """A position: the sort key (one integer; or a property's class, number, text), the
    userId and the snapshot."""

    key: tuple[Any, ...]
    user_id: int
    snapshot_us: int


@dataclass(frozen=True, slots=True)
class OrderedUser:
    row: Any
    cursor: OrderCursor


def expired(cursor: OrderCursor, now_us: int) -> bool:
    """Whether the cursor's listing began too long ago: the versions that would place users
    changed since then are gone (services/user_versions.py keeps them a day)."""
    return cursor.snapshot_us < now_us - user_versions.KEPT_FOR_US


def property_cursor_key(parts: Sequence[Any]) -> tuple[int, str, str] | None:
    """A property cursor's key read back (class, number, text), or None if it is not one."""
    if len(parts) != 3 or parts[0] not in (NUMERIC, TEXT, MISSING):
        return None
    if not all(isinstance(p, str) for p in parts[1:]):
        return None
    return int(parts[0]), str(parts[1]), str(parts[2])


async def users_page(
    conn: AsyncConnection,
    *,
    environment_id: int,
    conditions: Sequence[ColumnElement[bool]],
    order: UserOrder,
    limit: int,
    after: OrderCursor | None,
    now_us: int,
    backward: bool = False,
) -> list[OrderedUser]:
    """Up to `limit` users matching `conditions` in `order` past the cursor (`backward`:
    before it, nearest first), every user placed by its sort key as of the snapshot."""
    dialect = conn.dialect.name
    snapshot = after.snapshot_us if after is not None else now_us
    current = _keys(order, U, dialect)
    where = [U.c.environment_id == environment_id, *conditions]
    if after is not None:
        where += [U.c.sorted_us <= snapshot, U.c.created_us <= snapshot]
        where.append(_past(order, current, U.c.user_id, after, backward, dialect))
    rows = list(
        await conn.execute(
            select(U, *_labelled(current))
            .where(*where)
            .order_by(*_order_by(order, current, U.c.user_id, backward))
            .limit(limit)
        )
    )
    if after is not None:
        rows += await _movers(conn, environment_id, conditions, order, limit, after, backward)
        rows = _sorted(rows, order, backward)[:limit]
    return [OrderedUser(r, _cursor(r, order, snapshot, dialect)) for r in rows]


async def _movers(
    conn: AsyncConnection,
    environment_id: int,
    conditions: Sequence[ColumnElement[bool]],
    order: UserOrder,
    limit: int,
    after: OrderCursor,
    backward: bool,
) -> list[Any]:
    """Users whose sort keys changed after the snapshot, placed by their version then."""
    snapshot = after.snapshot_us
    dialect = conn.dialect.name

    def then(key: Any, now: Any) -> Any:
        """The key in the user's first version past the snapshot: one index probe."""
        version = (
            select(key)
            .where(
                V.c.environment_id == U.c.environment_id,
                V.c.user_id == U.c.user_id,
                V.c.until_us > snapshot,
            )
            .order_by(V.c.until_us)
            .limit(1)
            .correlate(U)
            .scalar_subquery()
        )
        return func.coalesce(version, now)

    keys = [
        then(k, now)
        for k, now in zip(_keys(order, V, dialect), _keys(order, U, dialect), strict=True)
    ]
    moved = (
        select(U, *_labelled(keys))
        .where(
            U.c.environment_id == environment_id,
            *conditions,
            U.c.sorted_us > snapshot,
            U.c.created_us <= snapshot,
        )
        .subquery()
    )
    placed = [moved.c[f"sort_{i}"] for i in range(len(keys))]
    rows = await conn.execute(
        select(moved)
        .where(_past(order, placed, moved.c.user_id, after, backward, dialect))
        .order_by(*_order_by(order, placed, moved.c.user_id, backward))
        .limit(limit)
    )
    return list(rows)


def _keys(order: UserOrder, table: Any, dialect: str) -> list[Any]:
    """The sort key's columns over `table` (users, or their versions)."""
    if order.field in COLUMNS:
        return [table.c[COLUMNS[order.field]]]
    assert order.name is not None, "checked"
    operand = user_operand(table, order.name, dialect)
    number = sort_number(operand)
    kind = case(
        (number.is_not(None), literal(NUMERIC)),
        (operand.present(), literal(TEXT)),
        else_=literal(MISSING),
    )
    text = operand.text()
    if dialect == "postgresql":
        text = text.collate("C")
    no_number = (
        literal(Decimal(0), Numeric) if dialect == "postgresql" else literal(sort_text(Decimal(0)))
    )
    is_text = and_(number.is_(None), operand.present())
    return [
        kind,
        func.coalesce(number, no_number),
        case((is_text, text), else_=literal("")),
    ]


def sort_number(operand: Operand) -> Any:
    """The property's number where it is numeric (else NULL), in a form SQL sorts exactly:
    `numeric` on PostgreSQL, models.property_values.sort_text on SQLite."""
    if isinstance(operand, PostgresJson):
        return operand.number()
    if isinstance(operand, SqliteJson):
        return func.usertrail_sort_number(operand.json)
    column = operand.column  # type: ignore[attr-defined]
    if operand.dialect == "postgresql":
        return column.cast(Numeric) if isinstance(operand, IntegerColumn) else pg_number(column)
    return func.usertrail_sort_number(func.json_quote(column))


def _labelled(keys: Sequence[Any]) -> list[Any]:
    return [key.label(f"sort_{i}") for i, key in enumerate(keys)]


def _ascending(order: UserOrder, backward: bool) -> list[bool]:
    """Per key column, whether the page reads it ascending: a property's class always goes
    up in list order; the rest and the userId follow the direction; backward flips all."""
    columns = (
        [True, not order.descending, not order.descending]
        if order.field == "PROPERTY"
        else [not order.descending]
    )
    return [up != backward for up in [*columns, not order.descending]]


def _order_by(order: UserOrder, keys: Sequence[Any], user_id: Any, backward: bool) -> list[Any]:
    ups = _ascending(order, backward)
    return [c if up else c.desc() for c, up in zip([*keys, user_id], ups, strict=True)]


def _bound(order: UserOrder, cursor: OrderCursor, dialect: str) -> list[Any]:
    """The cursor's key as SQL values comparable with `_keys`."""
    if order.field != "PROPERTY":
        return [*cursor.key, cursor.user_id]
    kind, number, text = cursor.key
    exact = Decimal(number)
    value = bindparam(None, exact, Numeric()) if dialect == "postgresql" else sort_text(exact)
    return [kind, value, text, cursor.user_id]


def _past(
    order: UserOrder,
    keys: Sequence[Any],
    user_id: Any,
    cursor: OrderCursor,
    backward: bool,
    dialect: str,
) -> ColumnElement[bool]:
    """Users strictly past the cursor in the page's reading order."""
    columns = [*keys, user_id]
    bounds = _bound(order, cursor, dialect)
    ups = _ascending(order, backward)
    if len(set(ups)) == 1:  # one direction: a row comparison, which indexes serve
        return tuple_(*columns) > tuple_(*bounds) if ups[0] else tuple_(*columns) < tuple_(*bounds)
    past: ColumnElement[bool] | None = None
    for column, bound, up in reversed(list(zip(columns, bounds, ups, strict=True))):
        beyond = column > bound if up else column < bound
        past = beyond if past is None else or_(beyond, and_(column == bound, past))
    assert past is not None
    return past


def _python_key(row: Any, order: UserOrder) -> list[Any]:
    keys = [row.sort_0] if order.field != "PROPERTY" else [row.sort_0, row.sort_1, row.sort_2]
    return [*keys, row.user_id]


def _sorted(rows: list[Any], order: UserOrder, backward: bool) -> list[Any]:
    """Rows in the page's reading order, as SQL ordered them (stable sorts, last key first)."""
    ups = _ascending(order, backward)
    keyed = [(_python_key(row, order), row) for row in rows]
    for index in reversed(range(len(ups))):
        keyed.sort(key=lambda pair, i=index: pair[0][i], reverse=not ups[index])  # type: ignore[misc]
    return [row for _, row in keyed]


def _cursor(row: Any, order: UserOrder, snapshot: int, dialect: str) -> OrderCursor:
    if order.field != "PROPERTY":
        return OrderCursor((int(row.sort_0),), row.user_id, snapshot)
    number = row.sort_1
    if dialect != "postgresql":
        number = _from_sort_text(number)
    text = str(Decimal(number).normalize()) if number is not None else "0"
    return OrderCursor((int(row.sort_0), text, row.sort_2 or ""), row.user_id, snapshot)


def _from_sort_text(value: str) -> Decimal:
    """The number models.property_values.sort_text wrote."""
    if value == "1":
        return Decimal(0)
    negative = value[0] == "0"
    magnitude = int(value[1:6])
    digits = value[6:]
    if negative:
        magnitude = 99999 - magnitude
        digits = "".join(str(9 - int(d)) for d in digits.rstrip("~"))
    exponent = magnitude - 50000 - len(digits)
    return Decimal(f"{'-' if negative else ''}{digits}E{exponent}")


def read_number(text: str) -> Decimal | None:
    """A cursor's number, or None when it is not one."""
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None
