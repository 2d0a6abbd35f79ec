"""The named failures of the domain; resolvers and routes translate them for clients."""

from __future__ import annotations

from dataclasses import dataclass

from models.db import DatabaseUnavailable, StatementTimeout


@dataclass(frozen=True, slots=True)
class Problem:
    """One expected failure: what went wrong, where, and a stable machine-readable code."""

    code: str
    message: str
    field: str | None = None
    index: int | None = None

    def at(self, index: int | None) -> Problem:
        """The same problem, placed at a position in a batch."""
        return Problem(self.code, self.message, self.field, index)


class UsertrailError(Exception):
    """Base of every expected failure a service raises."""

    code = "ERROR"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    @property
    def problem(self) -> Problem:
        return Problem(self.code, self.message, self.field)


class InvalidInput(UsertrailError):
    """The input breaks a documented limit or format."""

    code = "INVALID_INPUT"


class InvalidItems(InvalidInput):
    """Several items of one all-or-nothing call are refused: each a Problem at its index."""

    def __init__(self, problems: list[Problem]):
        first = problems[0]
        super().__init__(first.message, field=first.field, code=first.code)
        self.problems = problems


class NotFound(UsertrailError):
    """The thing named does not exist in this environment."""

    code = "NOT_FOUND"


class Conflict(UsertrailError):
    """The request contradicts stored state (already identified, name taken, ...)."""

    code = "CONFLICT"


# The database cannot be reached or stays busy; the client should retry later. Raised by
# models.db (Database.read and .write translate every outage there, in one place). It is
# deliberately no UsertrailError: resolvers turn those into payload errors, and an outage must
# reach the client as a failure to retry (HTTP 503 with Retry-After, GraphQL UNAVAILABLE).
Unavailable = DatabaseUnavailable

# A read statement ran past the statement timeout and was stopped (models/db.py); no
# UsertrailError either: the request cannot succeed as asked, and the GraphQL layer answers
# it as QUERY_TIMEOUT, logged in one short line.
TimedOut = StatementTimeout


class UnusableGeoDatabase(Exception):
    """The GeoIP database a setting names cannot be read (missing, unreadable, not a MaxMind
    DB file). A failure of the server's configuration, raised at startup: no UsertrailError,
    since no request could fix it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
