"""Look-ahead: the arguments with which the query selects a field below the current one.

A resolver returning a page of objects can prefetch what the query asks of each of them
(graph/user.py: the events of a user's sessions), so that their resolvers find it loaded
instead of each waiting for a batch of its own. Only plain selections are read: fields,
inline fragments and fragment spreads, none with a directive; anything else answers None
and the children resolve as usual. Argument values are Strawberry's: variables coerced,
literal numbers as the strings the query spells (callers convert what they read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.types.nodes import SelectedField, Selection

CACHE = "lookahead"


def selected_arguments(info: strawberry.Info, path: Sequence[str]) -> list[dict[str, Any]] | None:
    """The arguments of each selection of the field at `path` (field names below the current
    field): [] when it is not selected, None when the selection is not plain.

    Answered once per request for every list item at the same place (cached in the context).
    """
    shape = tuple((p.key, p.typename) for p in _path(info) if not isinstance(p.key, int))
    cache: dict[Any, Any] = info.context.extras.setdefault(CACHE, {})
    key = (id(info.operation), shape, tuple(path))
    if key not in cache:
        cache[key] = _arguments(info.selected_fields, path)
    found: list[dict[str, Any]] | None = cache[key]
    return found


def _path(info: strawberry.Info) -> list[Any]:
    steps = []
    step: Any = info.path
    while step is not None:
        steps.append(step)
        step = step.prev
    return steps


def _arguments(selections: list[Selection], path: Sequence[str]) -> list[dict[str, Any]] | None:
    fields: list[SelectedField] = []
    for field in selections:  # the resolver's own field (several when spread from fragments)
        below = _named(field.selections, path[0]) if isinstance(field, SelectedField) else None
        if below is None:
            return None
        fields += below
    for name in path[1:]:
        found: list[SelectedField] = []
        for field in fields:
            below = _named(field.selections, name)
            if below is None:
                return None
            found += below
        fields = found
    return [dict(field.arguments) for field in fields]


def _named(selections: list[Selection], name: str) -> list[SelectedField] | None:
    """The fields called `name` among `selections`, fragments included (None: a directive)."""
    found: list[SelectedField] = []
    for selection in selections:
        if selection.directives:
            return None
        if isinstance(selection, SelectedField):
            if selection.name == name:
                found.append(selection)
            continue
        inner = _named(selection.selections, name)  # an inline fragment or a fragment spread
        if inner is None:
            return None
        found += inner
    return found
