"""Settings from environment variables, overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///usertrail.db"
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    dev: bool = False
    workers: int = 1
    # Schema introspection and GraphiQL; None: on in dev mode only (see `introspection_on`).
    introspection: bool | None = None
    # GraphiQL's built browser files (`make assets`); "" is server/static/build/.
    assets_dir: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("USERTRAIL_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=env.get("USERTRAIL_HOST", "127.0.0.1"),
            port=int(env.get("USERTRAIL_PORT", "8000")),
            dev=env.get("USERTRAIL_DEV", "").lower() in ("1", "true", "yes"),
            workers=int(env.get("USERTRAIL_WORKERS", "1")),
            introspection=_switch(env.get("USERTRAIL_INTROSPECTION", "")),
            assets_dir=env.get("USERTRAIL_ASSETS_DIR", ""),
        )

    @property
    def introspection_on(self) -> bool:
        """Introspection and GraphiQL: as set, else on in dev mode and off outside it.

        Outside dev mode the schema is not published by default: a key a browser SDK holds
        (an ingest key) must not map the API, and when switched on only read and admin keys
        may introspect (graph/scopes.py)."""
        return self.dev if self.introspection is None else self.introspection

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
            "USERTRAIL_INTROSPECTION": _switch_text(self.introspection),
            "USERTRAIL_ASSETS_DIR": self.assets_dir,
        }


def _switch(text: str) -> bool | None:
    """An on/off variable: "" is unset (None), 0/false/no/off is False, anything else True."""
    if not text.strip():
        return None
    return text.strip().lower() not in FALSE_WORDS


def _switch_text(value: bool | None) -> str:
    return "" if value is None else "1" if value else "0"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
