"""Settings from environment variables, overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///usertrail.db"
FALSE_WORDS = ("0", "false", "no", "off")
DEFAULT_STATEMENT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    dev: bool = False
    workers: int = 1
    # Schema introspection and GraphiQL (internal tooling relies on both; off hides the schema).
    introspection: bool = True
    # Seconds a read statement may run before the database stops it (0: no limit); writes
    # have none (models/db.py says why).
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT

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
            statement_timeout=float(
                env.get("USERTRAIL_STATEMENT_TIMEOUT", str(DEFAULT_STATEMENT_TIMEOUT))
            ),
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
            "USERTRAIL_STATEMENT_TIMEOUT": str(self.statement_timeout),
        }


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
