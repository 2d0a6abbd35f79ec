"""How a user presents: display name and the full property map (SPEC §7)."""

from __future__ import annotations

from typing import Any

from services.clock import to_datetime

BUILT_IN = ("Date First Seen", "Email", "Identity", "User ID")


def display_name(user: Any) -> str:
    """Identity, else the Email property, else "User <userId>"."""
    return user.identity or user.email or f"User {user.user_id}"


def all_properties(user: Any) -> dict[str, Any]:
    """Custom properties, then the autocaptured ones (which cannot be overwritten)."""
    found: dict[str, Any] = dict(user.properties or {})
    found.update(user.autocaptured or {})
    found["Date First Seen"] = to_datetime(user.first_seen_us).isoformat()
    found["User ID"] = str(user.user_id)
    if user.email is not None:
        found["Email"] = user.email
    if user.identity is not None:
        found["Identity"] = user.identity
    return found


def autocaptured_names(user: Any) -> set[str]:
    """Names of the properties Usertrail sets itself."""
    return set(user.autocaptured or {}) | set(BUILT_IN)


def property_list(user: Any, search: str | None) -> list[tuple[str, Any, bool]]:
    """(name, value, autocaptured) sorted by name, filtered by a case-insensitive search."""
    auto = autocaptured_names(user)
    needle = search.casefold() if search else None
    listed = []
    for name, value in sorted(all_properties(user).items(), key=lambda kv: kv[0].casefold()):
        if needle and needle not in name.casefold() and needle not in str(value).casefold():
            continue
        listed.append((name, value, name in auto))
    return listed
