"""Opaque global ids and cursors: url-safe base64 of a typed tuple of integers."""

from __future__ import annotations

import base64
import binascii


def encode(kind: str, *parts: int) -> str:
    """An opaque id, e.g. encode("Session", user_id, session_id)."""
    raw = ":".join([kind, *map(str, parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(value: str, kind: str | None = None) -> tuple[str, tuple[int, ...]] | None:
    """(kind, parts) of an id made by `encode`, or None when it is not one (or not of `kind`)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        name, *parts = raw.split(":")
        numbers = tuple(int(p) for p in parts)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if kind is not None and name != kind:
        return None
    return name, numbers
