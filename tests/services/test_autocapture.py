"""Device, URL, UTM, marketing-channel and location rules of autocaptured session fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.autocapture import (
    Device,
    device_for,
    location_from,
    marketing_channel,
    parse_user_agent,
    split_url,
    utm_params,
)

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
NO_DEVICE = Device(None, None, None)

USER_AGENTS = {
    "chrome on mac": (CHROME_MAC, Device("Chrome 131", "Mac OS X 10.15", "DESKTOP")),
    "safari on mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        Device("Safari 17", "Mac OS X 10.15", "DESKTOP"),
    ),
    "safari on iphone": (SAFARI_IPHONE, Device("Mobile Safari 17", "iOS 17.2", "MOBILE")),
    "chrome on android phone": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.104 Mobile Safari/537.36",
        Device("Chrome Mobile 131", "Android 14", "MOBILE"),
    ),
    "chrome reduced UA on android phone": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        Device("Chrome Mobile 131", "Android 10", "MOBILE"),
    ),
    "samsung internet on galaxy tab": (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
        Device("Samsung Internet 23", "Android 13", "TABLET"),
    ),
    "chrome on lenovo tablet": (
        "Mozilla/5.0 (Linux; Android 13; Lenovo TB-X606F) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        Device("Chrome 120", "Android 13", "TABLET"),
    ),
    "firefox on android tablet": (
        "Mozilla/5.0 (Android 14; Tablet; rv:132.0) Gecko/132.0 Firefox/132.0",
        Device("Firefox Mobile 132", "Android 14", "TABLET"),
    ),
    "safari on ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Mobile/15E148 Safari/604.1",
        Device("Mobile Safari 17", "iOS 17.2", "TABLET"),
    ),
    "silk on kindle": (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/131.2.1 like Chrome/131.0.6778.135 Safari/537.36",
        Device("Amazon Silk 131", "Android 11", "TABLET"),
    ),
    "firefox on windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
        Device("Firefox 132", "Windows 10", "DESKTOP"),
    ),
    "edge on windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        Device("Edge 131", "Windows 10", "DESKTOP"),
    ),
    "chrome on windows 8.1": (
        "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/109.0.0.0 Safari/537.36",
        Device("Chrome 109", "Windows 8.1", "DESKTOP"),
    ),
    "chrome on linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        Device("Chrome 131", "Linux", "DESKTOP"),
    ),
    "googlebot": (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Device("Googlebot 2", None, "OTHER"),
    ),
    "googlebot smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Device("Googlebot 2", "Android 6.0", "OTHER"),
    ),
    "headless chrome": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        Device("HeadlessChrome 131", "Linux", "OTHER"),
    ),
    "samsung smart tv": (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
        Device("Samsung Internet 4", "Tizen 6.0", "OTHER"),
    ),
    "sony tv on android": (
        "Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2 Build/STT1.211025.001.Z4) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36 OPR/46.0.2207.0",
        Device("Opera 46", "Android 12", "OTHER"),
    ),
    "fire tv stick": (
        "Mozilla/5.0 (Linux; Android 9; AFTMM) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/98.6.1 like Chrome/98.0.4758.136 Safari/537.36",
        Device("Amazon Silk 98", "Android 9", "OTHER"),
    ),
    "xbox": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131",
        Device("Edge 44", "Windows 10", "OTHER"),
    ),
    "nintendo switch": (
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 "
        "(KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
        Device(None, None, "OTHER"),
    ),
    "android app http client": (
        "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240105.004)",
        Device("Android 14", "Android 14", "MOBILE"),
    ),
    "ios app http client": (
        "MyApp/1 CFNetwork/1490.0.4 Darwin/23.2.0",
        Device("MyApp 1", "iOS 17.2", "MOBILE"),
    ),
    "curl": ("curl/8.4.0", Device("curl 8", None, None)),
    "garbage": ("asdf qwerty 123", NO_DEVICE),
    "bare mozilla": ("Mozilla/5.0", NO_DEVICE),
    "empty": ("", NO_DEVICE),
    "blank": ("  \t", NO_DEVICE),
    "none": (None, NO_DEVICE),
}


@pytest.mark.parametrize(
    ("user_agent", "expected"), USER_AGENTS.values(), ids=list(USER_AGENTS.keys())
)
def test_parse_user_agent(user_agent: str | None, expected: Device) -> None:
    assert parse_user_agent(user_agent) == expected


def test_parse_user_agent_is_memoised() -> None:
    parse_user_agent.cache_clear()
    first = parse_user_agent(CHROME_MAC)
    assert parse_user_agent(CHROME_MAC) is first
    assert parse_user_agent.cache_info().hits == 1
    assert parse_user_agent.cache_info().maxsize == 8192


def test_a_huge_user_agent_is_parsed_without_error() -> None:
    assert parse_user_agent("x" * 100_000) == NO_DEVICE


@pytest.mark.parametrize(
    ("user_agent", "source", "expected"),
    [
        (CHROME_MAC, "WEB", Device("Chrome 131", "Mac OS X 10.15", "DESKTOP")),
        (None, "WEB", NO_DEVICE),
        (CHROME_MAC, "SERVER", NO_DEVICE),
        (None, "SERVER", NO_DEVICE),
        (None, "IOS", Device(None, "iOS", "MOBILE")),
        ("", "ANDROID", Device(None, "Android", "MOBILE")),
        ("okhttp/4.12.0", "ANDROID", Device("okhttp 4", "Android", "MOBILE")),
        ("garbage", "IOS", Device(None, "iOS", "MOBILE")),
        (SAFARI_IPHONE, "IOS", Device("Mobile Safari 17", "iOS 17.2", "MOBILE")),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X906C Build/TP1A.220624.014; wv) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.135 "
            "Safari/537.36",
            "ANDROID",
            Device("Chrome Mobile WebView 131", "Android 13", "TABLET"),
        ),
    ],
)
def test_device_for(user_agent: str | None, source: str, expected: Device) -> None:
    assert device_for(user_agent, source) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://Example.COM:8080/a/b?x=1&y=2#top",
            {"domain": "example.com", "path": "/a/b", "query": "x=1&y=2", "hash": "top"},
        ),
        ("HTTP://WWW.Example.com", {"domain": "www.example.com", "path": "/"}),
        ("https://example.com/?#", {"domain": "example.com", "path": "/"}),
        ("https://example.com#pricing", {"domain": "example.com", "path": "/", "hash": "pricing"}),
        (
            "https://user:secret@Shop.Example.com./cart",
            {"domain": "shop.example.com", "path": "/cart"},
        ),
        ("http://example.com:notaport/x", {"domain": "example.com", "path": "/x"}),
        ("http://[::1]:8000/x", {"domain": "::1", "path": "/x"}),
        ("http://127.0.0.1:8000", {"domain": "127.0.0.1", "path": "/"}),
        ("//cdn.example.com/app.js", {"domain": "cdn.example.com", "path": "/app.js"}),
        ("  https://example.com/padded \n", {"domain": "example.com", "path": "/padded"}),
        (
            "https://Bücher.example/straße?q=ü#größe",
            {"domain": "bücher.example", "path": "/straße", "query": "q=ü", "hash": "größe"},
        ),
        (
            "https://example.com/a%20b?q=%C3%BC",
            {"domain": "example.com", "path": "/a%20b", "query": "q=%C3%BC"},
        ),
        ("/a/b?x=1", {"path": "/a/b", "query": "x=1"}),
        ("?x=1", {"path": "/", "query": "x=1"}),
        ("#section", {"path": "/", "hash": "section"}),
        ("example.com/a", {}),
        ("not a url", {}),
        ("mailto:someone@example.com", {}),
        ("http://[::1", {}),
        ("http://[not-an-ip]/", {}),
        ("https://example.com\uff03@evil.com", {}),
        ("http://:80/", {}),
        ("", {}),
        ("   ", {}),
        (None, {}),
    ],
)
def test_split_url(url: str | None, expected: dict[str, str]) -> None:
    assert split_url(url) == expected


@given(st.text())
def test_split_url_and_utm_params_never_raise(url: str) -> None:
    split_url(url)
    split_url("http://" + url)
    utm_params("https://example.com/?" + url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://example.com/?utm_source=Google&utm_medium=cpc&utm_campaign=spring+sale"
            "&utm_term=running%20shoes&utm_content=%C3%A9t%C3%A9",
            {
                "source": "Google",
                "medium": "cpc",
                "campaign": "spring sale",
                "term": "running shoes",
                "content": "été",
            },
        ),
        ("/landing?UTM_Source=newsletter&utm_medium=", {"source": "newsletter"}),
        ("https://example.com/?utm_source=first&utm_source=second", {"source": "first"}),
        ("https://example.com/?utm_source=+&utm_id=7&gclid=abc&source=x", {}),
        ("https://example.com/#utm_source=fragment", {}),
        ("https://example.com/", {}),
        ("http://[::1?utm_source=x", {}),
        (None, {}),
    ],
)
def test_utm_params(url: str | None, expected: dict[str, str]) -> None:
    assert utm_params(url) == expected


@pytest.mark.parametrize(
    ("referrer", "utm", "expected"),
    [
        (None, {}, "Direct"),
        ("", {}, "Direct"),
        ("not a url", {}, "Direct"),
        ("https://example.com/pricing", {}, "Direct"),
        ("https://www.example.com/pricing", {}, "Direct"),
        ("https://blog.example.com/post", {}, "Direct"),
        ("https://shop.example.co.uk/", {}, "Referral"),
        ("https://news.example.org/story", {}, "Referral"),
        ("https://othersite.com/page", {}, "Referral"),
        (None, {"campaign": "spring"}, "Referral"),
        (None, {"source": "partner", "medium": "affiliate"}, "Referral"),
        ("https://docs.google.com/document/d/1", {}, "Referral"),
        ("https://www.google.com/", {}, "Organic Search"),
        ("https://www.google.co.uk/", {}, "Organic Search"),
        ("https://www.google.com.br/search?q=x", {}, "Organic Search"),
        ("https://www.bing.com/search?q=x", {}, "Organic Search"),
        ("https://uk.search.yahoo.com/", {}, "Organic Search"),
        ("https://duckduckgo.com/", {}, "Organic Search"),
        ("https://www.baidu.com/link?url=x", {}, "Organic Search"),
        ("https://yandex.ru/", {}, "Organic Search"),
        ("https://www.ecosia.org/", {}, "Organic Search"),
        ("https://search.brave.com/search?q=x", {}, "Organic Search"),
        ("android-app://com.google.android.googlequicksearchbox/", {}, "Organic Search"),
        ("https://notgoogle.com/", {}, "Referral"),
        (None, {"source": "google"}, "Organic Search"),
        (None, {"source": "partner", "medium": "organic"}, "Organic Search"),
        ("https://www.google.com/", {"source": "google", "medium": "cpc"}, "Paid Search"),
        (None, {"source": "bing", "medium": "PPC"}, "Paid Search"),
        (None, {"medium": "paidsearch"}, "Paid Search"),
        (None, {"medium": "paid_search"}, "Paid Search"),
        (None, {"medium": "paid"}, "Paid Search"),
        ("https://m.facebook.com/", {}, "Social"),
        ("https://l.facebook.com/l.php?u=x", {}, "Social"),
        ("https://t.co/abc", {}, "Social"),
        ("https://x.com/someone", {}, "Social"),
        ("https://www.linkedin.com/feed/", {}, "Social"),
        ("https://lnkd.in/abc", {}, "Social"),
        ("https://www.instagram.com/", {}, "Social"),
        ("https://www.pinterest.co.uk/", {}, "Social"),
        ("https://old.reddit.com/r/python", {}, "Social"),
        ("https://www.youtube.com/watch?v=1", {}, "Social"),
        ("https://www.tiktok.com/", {}, "Social"),
        ("https://news.ycombinator.com/item?id=1", {}, "Social"),
        (None, {"source": "facebook"}, "Social"),
        (None, {"source": "partner", "medium": "social"}, "Social"),
        (None, {"source": "partner", "medium": "social-network"}, "Social"),
        (None, {"medium": "sm"}, "Social"),
        (None, {"source": "mailchimp", "medium": "email"}, "Email"),
        (None, {"medium": "E-Mail"}, "Email"),
        (None, {"medium": "newsletter"}, "Email"),
        (None, {"source": "newsletter"}, "Email"),
        ("https://www.google.com/", {"medium": "email"}, "Email"),
        ("https://mail.google.com/mail/u/0/", {}, "Email"),
        ("https://outlook.live.com/mail/", {}, "Email"),
        ("android-app://com.google.android.gm/", {}, "Email"),
    ],
)
def test_marketing_channel(referrer: str | None, utm: dict[str, str], expected: str) -> None:
    assert (
        marketing_channel(referrer=referrer, utm=utm, landing_domain="www.example.com") == expected
    )


def test_same_site_is_compared_by_registrable_domain() -> None:
    def channel(referrer: str, landing_domain: str | None) -> str:
        return marketing_channel(referrer=referrer, utm={}, landing_domain=landing_domain)

    assert channel("https://checkout.shop.co.uk/", "www.shop.co.uk") == "Direct"
    assert channel("https://other.co.uk/", "www.shop.co.uk") == "Referral"
    assert channel("https://WWW.Example.COM:443/", "Example.com.") == "Direct"
    assert channel("http://127.0.0.1:3000/", "127.0.0.1") == "Direct"
    assert channel("http://127.0.0.2/", "127.0.0.1") == "Referral"
    assert channel("https://example.com/", None) == "Referral"
    # a search engine's own site: its pages refer to each other, not to a search
    assert channel("https://www.google.com/search?q=x", "about.google.com") == "Direct"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"country": "US", "region": "CA", "city": "San Francisco"},
            {"country": "US", "region": "CA", "city": "San Francisco"},
        ),
        ({"country": " DE ", "city": "  "}, {"country": "DE"}),
        ({"city": "Zürich", "lat": 47.37, "region": None}, {"city": "Zürich"}),
        ({"country": "x" * 300}, {"country": "x" * 255}),
        ({"country": 1, "region": ["CA"], "city": {"name": "SF"}}, None),
        ({"lat": 1.0, "lon": 2.0}, None),
        ({}, None),
        ([], None),
        ("US", None),
        (None, None),
        (42, None),
    ],
)
def test_location_from(value: object, expected: dict[str, str] | None) -> None:
    assert location_from(value) == expected
