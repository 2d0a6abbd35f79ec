"""Settings from environment variables, overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///usertrail.db"
FALSE_WORDS = ("0", "false", "no", "off")
DEFAULT_STATEMENT_TIMEOUT = 10.0


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
    # Origins a browser page may call /graphql (and the ingestion routes) from; "*": any.
    cors_origins: tuple[str, ...] = ()
    # Origins added for /v1 and /api only; None: the default, any origin outside dev mode
    # (browser SDKs post from customers' sites with public write keys).
    cors_ingest_origins: tuple[str, ...] | None = None
    # The operator's bearer key for /metrics outside dev mode (env only: a flag shows in `ps`).
    metrics_key: str | None = None
    workers: int = 1
    # Schema introspection and GraphiQL; None: on in dev mode only (see `introspection_on`).
    introspection: bool | None = None
    # GraphiQL's built browser files (`make assets`); "" is server/static/build/.
    assets_dir: str = ""
    # Apollo's persisted queries: texts kept per process (server/persisted_queries.py).
    persisted_query_entries: int = 1000
    persisted_query_bytes: int = 4 * 1024 * 1024
    # Seconds a read statement may run before the database stops it (0: no limit); writes
    # have none (models/db.py says why).
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    # Replacements of framework internals that pay for themselves (`make bench` measures
    # them); off runs the stock Strawberry / graphql-core / json paths. Read from
    # the environment even by `Settings()`, so that servers built from defaults (tests, the
    # bench) follow USERTRAIL_FAST_PATHS=0 too.
    fast_paths: bool = field(default_factory=fast_paths_from)
    # A MaxMind DB file (GeoLite2-City.mmdb, ...) locating client events by IP address
    # (services/geolocation.py); "": none, events keep the location their context gives.
    geoip_db: str = ""
    # Networks (CIDR) of the proxies whose X-Forwarded-For names the client
    # (server/client_address.py); from any other peer the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # Events a live subscriber's queue holds before more are dropped (and counted).
    live_queue: int = 1000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        ingest_origins = env.get("USERTRAIL_CORS_INGEST_ORIGINS")
        return cls(
            database_url=env.get("USERTRAIL_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=env.get("USERTRAIL_HOST", "127.0.0.1"),
            port=int(env.get("USERTRAIL_PORT", "8000")),
            dev=env.get("USERTRAIL_DEV", "").lower() in ("1", "true", "yes"),
            cors_origins=parse_origins(
                env.get("USERTRAIL_CORS_ORIGINS", ""), "USERTRAIL_CORS_ORIGINS"
            ),
            cors_ingest_origins=(
                None
                if ingest_origins is None
                else parse_origins(ingest_origins, "USERTRAIL_CORS_INGEST_ORIGINS")
            ),
            metrics_key=env.get("USERTRAIL_METRICS_KEY") or None,
            workers=int(env.get("USERTRAIL_WORKERS", "1")),
            introspection=_switch(env.get("USERTRAIL_INTROSPECTION", "")),
            assets_dir=env.get("USERTRAIL_ASSETS_DIR", ""),
            persisted_query_entries=int(env.get("USERTRAIL_PERSISTED_QUERY_ENTRIES", "1000")),
            persisted_query_bytes=int(env.get("USERTRAIL_PERSISTED_QUERY_BYTES", str(4 << 20))),
            statement_timeout=float(
                env.get("USERTRAIL_STATEMENT_TIMEOUT", str(DEFAULT_STATEMENT_TIMEOUT))
            ),
            fast_paths=fast_paths_from(env),
            geoip_db=env.get("USERTRAIL_GEOIP_DB", "").strip(),
            trusted_proxies=parse_networks(
                env.get("USERTRAIL_TRUSTED_PROXIES", ""), "USERTRAIL_TRUSTED_PROXIES"
            ),
            live_queue=int(env.get("USERTRAIL_LIVE_QUEUE", "1000")),
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
        optional = {}
        if self.cors_ingest_origins is not None:
            optional["USERTRAIL_CORS_INGEST_ORIGINS"] = ",".join(self.cors_ingest_origins)
        if self.metrics_key:
            optional["USERTRAIL_METRICS_KEY"] = self.metrics_key
        return {
            "USERTRAIL_DATABASE_URL": self.database_url,
            "USERTRAIL_HOST": self.host,
            "USERTRAIL_PORT": str(self.port),
            "USERTRAIL_DEV": "1" if self.dev else "0",
            "USERTRAIL_CORS_ORIGINS": ",".join(self.cors_origins),
            **optional,
            "USERTRAIL_WORKERS": str(self.workers),
            "USERTRAIL_INTROSPECTION": _switch_text(self.introspection),
            "USERTRAIL_ASSETS_DIR": self.assets_dir,
            "USERTRAIL_PERSISTED_QUERY_ENTRIES": str(self.persisted_query_entries),
            "USERTRAIL_PERSISTED_QUERY_BYTES": str(self.persisted_query_bytes),
            "USERTRAIL_STATEMENT_TIMEOUT": str(self.statement_timeout),
            "USERTRAIL_FAST_PATHS": "1" if self.fast_paths else "0",
            "USERTRAIL_GEOIP_DB": self.geoip_db,
            "USERTRAIL_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "USERTRAIL_LIVE_QUEUE": str(self.live_queue),
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


# An origin as browsers send it: scheme://host[:port], nothing after (no path, no slash).
ORIGIN = re.compile(r"(https?)://([^/?#@\s:]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}


class SettingError(ValueError):
    """A setting that cannot be used, with a message naming it and saying what is expected."""


def parse_origins(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated origins (or `*`) as browsers send them: lower case, no default port.

    Raises SettingError, naming `name`, for anything that is not an origin (a path or a
    trailing slash would never match what a browser sends).
    """
    origins: list[str] = []
    for part in (item.strip() for item in text.split(",")):
        if not part:
            continue
        if part == "*":
            origins.append(part)
            continue
        found = ORIGIN.fullmatch(part)
        if found is None:
            raise SettingError(
                f"{name}: {part!r} is not an origin; write scheme://host[:port] with no path "
                "or trailing slash (https://app.example.com, http://localhost:5173), or *"
            )
        scheme, host, port = found.group(1).lower(), found.group(2).lower(), found.group(3)
        if port is not None and not 0 < int(port) < 65536:
            raise SettingError(f"{name}: {part!r} has port {port}; ports run from 1 to 65535")
        if port is not None and int(port) != DEFAULT_PORTS[scheme]:
            host = f"{host}:{int(port)}"
        origins.append(f"{scheme}://{host}")
    return tuple(dict.fromkeys(origins))


def is_loopback_origin(origin: str) -> bool:
    """True for an http(s) origin on localhost or a loopback address (any port)."""
    found = ORIGIN.fullmatch(origin)
    return found is not None and is_loopback(found.group(2).strip("[]").lower())


def parse_networks(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated networks in CIDR form (`10.0.0.0/8`, `fd00::/8`) or single addresses,
    normalised (`10.1.2.3` is `10.1.2.3/32`). Raises SettingError, naming `name`, for anything
    else."""
    networks: list[str] = []
    for part in (item.strip() for item in text.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingError(
                f"{name}: {part!r} is not a network; write CIDRs or addresses separated by "
                "commas (10.0.0.0/8, 192.168.1.7, fd00::/8)"
            ) from None
    return tuple(dict.fromkeys(networks))
