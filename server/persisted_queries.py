"""Apollo's automatic persisted queries (APQ): a query sent once with its hash, then by hash alone.

The protocol Apollo Client's `PersistedQueryLink` speaks, in `extensions.persistedQuery =
{"version": 1, "sha256Hash": ...}` of a GraphQL request (POST body, or GET parameters):

- without `query`: the text kept under that hash runs. An unknown hash answers HTTP 200 with
  the error `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`), upon which the client
  sends the request again with its text (any other answer fails the client's query);
- with `query`: the hash must be the SHA-256 (hex) of the text, else HTTP 400
  `PERSISTED_QUERY_HASH_MISMATCH`. The text is kept once its operation has run: a text that
  does not parse or validate is never kept, so its hash keeps answering NOT_FOUND;
- another `version` is HTTP 400 `PERSISTED_QUERY_VERSION_NOT_SUPPORTED`, a malformed
  extension HTTP 400 `PERSISTED_QUERY_INVALID`.

A request by hash is the same request as one carrying its text: authenticated first (the
cache is consulted after the key), then checked by every query limit, and by GET only queries
run (a mutation by hash over GET answers 405 like any GET mutation).

The texts are kept per process in a least-recently-used cache bounded in entries and in bytes
of text (a text over an eighth of the bytes is run but not kept). With several worker
processes each learns a hash on its own: a worker that has not seen it answers NOT_FOUND, the
client resends the text, and that worker keeps it. Nothing is wrong meanwhile; a round trip is
spent. Entries are keyed by environment and hash, so that no environment can learn, from a
hit, which queries another one runs.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from strawberry.http import GraphQLRequestData

VERSION = 1
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
DEFAULT_MAX_ENTRIES = 1000  # as server/settings.py
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


class PersistedQueryRefused(Exception):
    """A persisted-query request answered without running: HTTP `status`, a GraphQL error."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The answer, in GraphQL's error shape."""
        return {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}


@dataclass(frozen=True, slots=True)
class Pending:
    """A verified text to keep once its operation has run."""

    key: tuple[int, str]
    text: str
    size: int


@dataclass(slots=True)
class Counts:
    """What the cache did since the process started (for tests and operators)."""

    hits: int = 0  # a hash alone found its text
    misses: int = 0  # a hash alone answered NOT_FOUND
    verified: int = 0  # a text sent with its hash, hash checked
    kept: int = 0  # texts stored
    evicted: int = 0


class PersistedQueries:
    """The texts of persisted queries, by environment and hash: LRU, bounded in count and bytes."""

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.counts = Counts()
        self._texts: OrderedDict[tuple[int, str], str] = OrderedDict()
        self._sizes: dict[tuple[int, str], int] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def size_in_bytes(self) -> int:
        """The bytes (UTF-8) of the texts kept."""
        return self._bytes

    def resolve(
        self, request: GraphQLRequestData, *, environment_id: int
    ) -> tuple[GraphQLRequestData, Pending | None]:
        """The request with its query text, and the text to keep once it has run (if any).

        Raises PersistedQueryRefused for an unknown hash, a wrong hash or version."""
        extension = (request.extensions or {}).get("persistedQuery")
        if extension is None:
            return request, None
        digest = _digest_of(extension)
        key = (environment_id, digest)
        if request.query is None:
            text = self._texts.get(key)
            if text is None:
                self.counts.misses += 1
                raise PersistedQueryRefused(
                    200, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"
                )
            self._texts.move_to_end(key)
            self.counts.hits += 1
            return replace(request, query=text), None
        if not isinstance(request.query, str):  # Strawberry refuses it before this
            return request, None
        encoded = request.query.encode("utf-8", "surrogatepass")
        if hashlib.sha256(encoded).hexdigest() != digest:
            raise PersistedQueryRefused(
                400,
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query text: "
                "send the lowercase hex digest of the UTF-8 bytes of `query`",
            )
        self.counts.verified += 1
        return request, Pending(key, request.query, len(encoded))

    def keep(self, pending: Pending) -> None:
        """Store a verified text whose operation ran, evicting the least recently used."""
        if pending.key in self._texts:
            self._texts.move_to_end(pending.key)
            return
        if pending.size > self.max_bytes // 8 or self.max_entries < 1:
            return  # run, not kept: its hash alone keeps answering NOT_FOUND
        self._texts[pending.key] = pending.text
        self._sizes[pending.key] = pending.size
        self._bytes += pending.size
        self.counts.kept += 1
        while len(self._texts) > self.max_entries or self._bytes > self.max_bytes:
            oldest, _ = self._texts.popitem(last=False)
            self._bytes -= self._sizes.pop(oldest)
            self.counts.evicted += 1


def _digest_of(extension: object) -> str:
    """The lowercase hex digest of a valid `persistedQuery` extension."""
    if not isinstance(extension, dict):
        raise _invalid("extensions.persistedQuery must be an object {version, sha256Hash}")
    version = extension.get("version")
    if version != VERSION or isinstance(version, bool):
        raise PersistedQueryRefused(
            400,
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
            f"extensions.persistedQuery.version {version!r:.20} is not supported: "
            f"only version {VERSION} (Apollo's automatic persisted queries)",
        )
    digest = extension.get("sha256Hash")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise _invalid("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")
    return digest.lower()


def _invalid(message: str) -> PersistedQueryRefused:
    return PersistedQueryRefused(400, "PERSISTED_QUERY_INVALID", message)


def requested_by_get(query_params: Any) -> bool:
    """True for a GET carrying `extensions` (a persisted query), which is no GraphiQL visit."""
    return query_params.get("extensions") is not None
