"""Settings from environment variables, overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///usertrail.db"
FALSE_WORDS = ("0", "false", "no", "off")


def fast_paths_from(environ: Mapping[str, str] | None = None) -> bool:
    """USERTRAIL_FAST_PATHS: on unless it is one of FALSE_WORDS."""
    env = os.environ if environ is None else environ
    return env.get("USERTRAIL_FAST_PATHS", "1").strip().lower() not in FALSE_WORDS


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    dev: bool = False
    workers: int = 1
    # Schema introspection and GraphiQL (internal tooling relies on both; off hides the schema).
    introspection: bool = True
    # Apollo's persisted queries: texts kept per process (server/persisted_queries.py).
    persisted_query_entries: int = 1000
    persisted_query_bytes: int = 4 * 1024 * 1024
    # Replacements of framework internals that pay for themselves (`make bench` measures
    # them); off runs the stock Strawberry / graphql-core / json paths. Read from
    # the environment even by `Settings()`, so that servers built from defaults (tests, the
    # bench) follow USERTRAIL_FAST_PATHS=0 too.
    fast_paths: bool = field(default_factory=fast_paths_from)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("USERTRAIL_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=env.get("USERTRAIL_HOST", "127.0.0.1"),
            port=int(env.get("USERTRAIL_PORT", "8000")),
            dev=env.get("USERTRAIL_DEV", "").lower() in ("1", "true", "yes"),
            workers=int(env.get("USERTRAIL_WORKERS", "1")),
            introspection=env.get("USERTRAIL_INTROSPECTION", "1").lower() not in FALSE_WORDS,
            persisted_query_entries=int(env.get("USERTRAIL_PERSISTED_QUERY_ENTRIES", "1000")),
            persisted_query_bytes=int(env.get("USERTRAIL_PERSISTED_QUERY_BYTES", str(4 << 20))),
            fast_paths=fast_paths_from(env),
        )

    def with_overrides(self, **values: object) -> Settings:
        """A copy with the given non-None values replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def as_env(self) -> dict[str, str]:
        """These settings as USERTRAIL_* variables (for uvicorn worker processes)."""
        return {
            "USERTRAIL_DATABASE_URL": self.database_url,
            "USERTRAIL_HOST": self.host,
            "USERTRAIL_PORT": str(self.port),
            "USERTRAIL_DEV": "1" if self.dev else "0",
            "USERTRAIL_WORKERS": str(self.workers),
            "USERTRAIL_INTROSPECTION": "1" if self.introspection else "0",
            "USERTRAIL_PERSISTED_QUERY_ENTRIES": str(self.persisted_query_entries),
            "USERTRAIL_PERSISTED_QUERY_BYTES": str(self.persisted_query_bytes),
            "USERTRAIL_FAST_PATHS": "1" if self.fast_paths else "0",
        }


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
