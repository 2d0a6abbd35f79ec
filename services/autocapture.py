"""What a client event tells about its session: device, page URL parts, UTM, channel, location.

Pure functions with no IO, shared by ingestion and the sessionizer.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

import ua_parser

# -------------------------------------------------------------------------- devices


@dataclass(frozen=True, slots=True)
class Device:
    """Browser, operating system and form factor of a client, each unknown as None."""

    browser: str | None
    platform: str | None
    device_type: str | None


_NO_DEVICE = Device(None, None, None)

# ua_parser has no form-factor field, so TVs and consoles are recognised by the tokens
# their user agents and device families carry; `AFT…` models are Amazon Fire TV sticks.
_NOT_A_PERSONAL_DEVICE = re.compile(
    r"smart-?tv|\bTV\b|hbbtv|appletv|googletv|crkey|roku|bravia|web0s|netcast|playstation"
    r"|xbox|nintendo|(?-i:Android [\d.]+; AFT)",
    re.IGNORECASE,
)
_AUTOMATION_BROWSERS = frozenset({"HeadlessChrome", "PhantomJS"})
_TABLET_DEVICES = frozenset({"iPad", "Kindle", "Generic Tablet"})
_MOBILE_OSES = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "HarmonyOS"}
)
_DESKTOP_OSES = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "FreeBSD"}
    | {"OpenBSD", "NetBSD", "Linux Mint", "Red Hat", "SUSE", "Gentoo", "Arch Linux", "CentOS"}
)
_MOBILE_DEFAULTS = {"IOS": "iOS", "ANDROID": "Android"}


def warm_up() -> None:
    """Load the user-agent rules now (~0.2 s) rather than in the first request that needs them."""
    parse_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")


@functools.lru_cache(maxsize=8192)  # the same few user agents arrive with every event
def parse_user_agent(user_agent: str | None) -> Device:
    """The browser, platform and device type a user-agent string names."""
    if not user_agent or not user_agent.strip():
        return _NO_DEVICE
    parsed = ua_parser.parse(user_agent.strip())
    # ua_parser 1.x reports unknowns as None; "Other" is what 0.x said, kept out all the same.
    agent = parsed.user_agent if parsed.user_agent and parsed.user_agent.family != "Other" else None
    system = parsed.os if parsed.os and parsed.os.family != "Other" else None
    hardware = parsed.device if parsed.device and parsed.device.family != "Other" else None
    browser = _with_version(agent.family, agent.major) if agent else None
    platform = _with_version(system.family, system.major, system.minor) if system else None
    device_type = _device_type(
        user_agent,
        browser_family=agent.family if agent else None,
        os_family=system.family if system else None,
        device_family=hardware.family if hardware else None,
        device_brand=hardware.brand if hardware else None,
    )
    return Device(browser, platform, device_type)


def device_for(user_agent: str | None, source: str) -> Device:
    """The device of an event from `source`; mobile SDKs imply their platform if the UA is mute."""
    if source == "SERVER":
        return _NO_DEVICE
    device = parse_user_agent(user_agent)
    default_platform = _MOBILE_DEFAULTS.get(source)
    if default_platform is None:
        return device
    return Device(
        device.browser,
        device.platform or default_platform,
        device.device_type or "MOBILE",
    )


def _with_version(family: str, *parts: str | None) -> str:
    version: list[str] = []
    for part in parts:
        if not part:
            break
        version.append(part)
    return f"{family} {'.'.join(version)}" if version else family


def _device_type(
    user_agent: str,
    *,
    browser_family: str | None,
    os_family: str | None,
    device_family: str | None,
    device_brand: str | None,
) -> str | None:
    if device_family == "Spider" or browser_family in _AUTOMATION_BROWSERS:
        return "OTHER"
    if _NOT_A_PERSONAL_DEVICE.search(user_agent) or (
        device_family and _NOT_A_PERSONAL_DEVICE.search(device_family)
    ):
        return "OTHER"
    if device_family in _TABLET_DEVICES or device_brand == "Generic_Android_Tablet":
        return "TABLET"
    # Android browsers say "Mobile" on phones only; app HTTP clients (Dalvik) never do.
    if os_family == "Android" and "Mobile" not in user_agent and "Safari/" in user_agent:
        return "TABLET"
    if os_family in _MOBILE_OSES or "Mobi" in user_agent:
        return "MOBILE"
    # iPads since iPadOS 13 send the desktop Safari UA, so they count as desktops here.
    if os_family in _DESKTOP_OSES or device_family == "Mac":
        return "DESKTOP"
    return None


# ------------------------------------------------------------------------------ URLs

_UTM_KEYS = ("source", "medium", "campaign", "term", "content")


def split_url(url: str | None) -> Mapping[str, str]:
    """The non-empty `domain`, `path`, `query` and `hash` of a URL; {} when it cannot be read.

    Read-only: the answers are cached, since the same pages come back with every visit.
    """
    if not isinstance(url, str):
        return _NOTHING
    return _split_url(url)


_NOTHING: Mapping[str, str] = MappingProxyType({})


@functools.lru_cache(maxsize=4096)
def _split_url(url: str) -> Mapping[str, str]:
    return MappingProxyType(_read_url(url))


def _read_url(url: str) -> dict[str, str]:
    if not url.strip():
        return {}
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return {}
    # Without a host only references to a path on the same site ("/a?b", "?b", "#b") are
    # trusted: "example.com/x" or "mailto:x" would otherwise pass for paths.
    if host is None and (parts.scheme or parts.netloc or url[0] not in "/?#"):
        return {}
    pieces = {"path": parts.path or "/", "query": parts.query, "hash": parts.fragment}
    if host:
        pieces = {"domain": host.rstrip(".")} | pieces
    return {key: value for key, value in pieces.items() if value}


def utm_params(url: str | None) -> dict[str, str]:
    """The non-empty utm_source … utm_content of a URL's query, keyed without the prefix."""
    query = split_url(url).get("query", "")
    found: dict[str, str] = {}
    for key, value in parse_qsl(query):
        name = key.strip().lower()
        if name.startswith("utm_") and name[4:] in _UTM_KEYS and value.strip():
            found.setdefault(name[4:], value.strip())  # the first of repeated tags wins
    return found


# ------------------------------------------------------------------------- channels

_EMAIL_WORDS = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
_PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search", "sem"})
_SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_SOCIAL_BRANDS = frozenset(
    {"facebook", "fb", "instagram", "twitter", "linkedin", "pinterest", "reddit", "youtube"}
    | {"tiktok", "snapchat", "tumblr", "quora", "discord", "whatsapp", "telegram", "threads"}
    | {"weibo", "vk", "bsky", "mastodon"}
)
_SOCIAL_SITES = frozenset(
    {"x.com", "t.co", "lnkd.in", "youtu.be", "t.me", "wa.me", "news.ycombinator.com"}
)
_SEARCH_BRANDS = frozenset(
    {"google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "seznam"}
    | {"sogou", "startpage", "qwant", "ask", "aol", "kagi", "daum"}
)
_SEARCH_SITES = frozenset({"search.brave.com", "ya.ru"})
# Products on a search engine's domain that are not its results page.
_NOT_SEARCH_SUBDOMAINS = frozenset(
    {"accounts", "calendar", "docs", "drive", "meet", "photos", "play", "sites", "groups"}
)
_WEBMAIL_HOSTS = frozenset({"outlook.live.com", "outlook.office.com", "outlook.office365.com"})
# Chrome on Android reports the app that opened a link as android-app://<package>.
_APP_CHANNELS = {
    "com.google.android.googlequicksearchbox": "Organic Search",
    "com.google.android.gm": "Email",
    "com.facebook.katana": "Social",
    "com.instagram.android": "Social",
    "com.twitter.android": "Social",
    "com.linkedin.android": "Social",
    "com.reddit.frontpage": "Social",
}
# Second-level labels under which country TLDs register names (example.co.uk); without a
# public-suffix list this is the usual approximation of a registrable domain.
_GENERIC_SECOND_LEVELS = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or"})


def marketing_channel(
    *, referrer: str | None, utm: Mapping[str, str], landing_domain: str | None
) -> str:
    """The marketing channel of a session's first page, from its UTM tags and referrer.

    The first rule that applies wins:
    1. utm_medium: email, e-mail, e_mail, newsletter -> Email; cpc, ppc, sem, paidsearch,
       paid_search or anything starting "paid" -> Paid Search; social, social-network,
       social-media, sm -> Social; organic -> Organic Search.
    2. utm_source: an email word -> Email; a social site (facebook, fb, twitter, linkedin,
       ..., or its domain) -> Social; a search engine (google, bing, ...) -> Organic Search.
    3. A referrer from another site (a registrable domain other than landing_domain's):
       webmail (mail.*, outlook.live.com, Gmail app) -> Email; a social site (facebook,
       x.com, t.co, lnkd.in, reddit, youtube, ...) -> Social; a search engine's results
       (google.*, bing, yahoo, duckduckgo, baidu, yandex, ecosia, ...) -> Organic Search.
    4. No UTM tags and no such referrer -> Direct. Same-site and unreadable referrers
       count as none.
    5. Anything else -> Referral.
    """
    medium = utm.get("medium", "").strip().lower()
    source = utm.get("source", "").strip().lower()
    if medium in _EMAIL_WORDS:
        return "Email"
    if medium in _PAID_MEDIUMS or medium.startswith("paid"):
        return "Paid Search"
    if medium in _SOCIAL_MEDIUMS:
        return "Social"
    if medium == "organic":
        return "Organic Search"
    if source in _EMAIL_WORDS:
        return "Email"
    if source and (channel := _channel_of_host(source)):
        return channel
    referrer_host = split_url(referrer).get("domain")
    if referrer_host and landing_domain:
        landing_host = landing_domain.strip().lower().rstrip(".")
        if _registrable_domain(referrer_host) == _registrable_domain(landing_host):
            referrer_host = None
    if referrer_host and (channel := _channel_of_host(referrer_host)):
        return channel
    if not referrer_host and not any(value.strip() for value in utm.values()):
        return "Direct"
    return "Referral"


def _channel_of_host(host: str) -> str | None:
    if host in _APP_CHANNELS:
        return _APP_CHANNELS[host]
    first_label = host.split(".", 1)[0]
    if first_label in ("mail", "webmail") or host in _WEBMAIL_HOSTS:
        return "Email"
    site = _registrable_domain(host)
    brand = site.split(".", 1)[0]
    if brand in _SOCIAL_BRANDS or site in _SOCIAL_SITES or host in _SOCIAL_SITES:
        return "Social"
    if host in _SEARCH_SITES or site in _SEARCH_SITES:
        return "Organic Search"
    if brand in _SEARCH_BRANDS and first_label not in _NOT_SEARCH_SUBDOMAINS:
        return "Organic Search"
    return None


def _registrable_domain(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _GENERIC_SECOND_LEVELS:
            return ".".join(labels[-3:])
        return ".".join(labels[-2:])
    return host


# ------------------------------------------------------------------------- location

_LOCATION_KEYS = ("country", "region", "city")
_MAX_LOCATION_CHARS = 255


def location_from(value: object) -> dict[str, str] | None:
    """The country, region and city of a location JSON value; None when it holds none."""
    if not isinstance(value, dict):
        return None
    location: dict[str, str] = {}
    for key in _LOCATION_KEYS:
        part = value.get(key)
        if isinstance(part, str) and part.strip():
            location[key] = part.strip()[:_MAX_LOCATION_CHARS]
    return location or None
