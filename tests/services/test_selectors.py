"""CSS selectors against element hierarchies: matching, parsing leniency, round trips."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services import limits
from services.errors import InvalidInput
from services.selectors import (
    Attributes,
    Element,
    compile_selector,
    most_specific_selector,
    parse_hierarchy,
)

CHECKOUT = (
    "@html;|@body;|@div;#checkout;.panel;|@form;#pay-form;.form;[action=/api/pay];|"
    "@button;.btn;.btn-primary;.buy;[type=submit];[data-sku=42];|"
)
NAV = (
    "@html;|@body;|@header;.site-header;|@nav;#main-nav;.nav;|@ul;|@li;.nav-item;|"
    "@a;.nav-link;[href=/pricing];[lang=en-US];|"
)
SIGNUP = (
    "@body;|@main;|@form;#signup;|@div;.field;|"
    "@input;#email-2;.input;[type=email];[name=email];[placeholder=you@example.com];|"
)
NESTED = "@body;|@div;|@span;|@p;|@a;|"
# The nearest span is not the child of a div; only the outer one is.
BACKTRACK = "@body;|@div;|@span;|@div;|@p;|@span;|@a;|"
PRIMARY_ONLY = "@body;|@button;.btn-primary;|"
CHECKOUT_2 = "@body;|@div;#checkout-2;|"


@pytest.mark.parametrize(
    ("selector", "hierarchy", "expected"),
    [
        # type and universal selectors
        ("button", CHECKOUT, True),
        ("BUTTON", CHECKOUT, True),
        ("a", CHECKOUT, False),
        ("*", CHECKOUT, True),
        ("input", SIGNUP, True),
        # ids, with dashes and digits
        ("#email-2", SIGNUP, True),
        ("input#email-2", SIGNUP, True),
        ("#email", SIGNUP, False),
        ("#checkout", CHECKOUT_2, False),
        ("#checkout-2", CHECKOUT_2, True),
        # classes are exact tokens and case-sensitive
        (".btn", CHECKOUT, True),
        (".btn.buy.btn-primary", CHECKOUT, True),
        (".btn", PRIMARY_ONLY, False),
        (".btn-primary", PRIMARY_ONLY, True),
        (".BTN", CHECKOUT, False),
        (".btn.sell", CHECKOUT, False),
        (".nav-link", NAV, True),
        (".nav", NAV, False),
        # attributes
        ("[data-sku]", CHECKOUT, True),
        ("[data-missing]", CHECKOUT, False),
        ('[data-sku="42"]', CHECKOUT, True),
        ('[data-sku="4"]', CHECKOUT, False),
        ('[data-sku="420"]', CHECKOUT, False),
        ("[type=submit]", CHECKOUT, True),
        ("[TYPE=submit]", CHECKOUT, True),
        ("[type=SUBMIT]", CHECKOUT, False),
        ("[type=SUBMIT i]", CHECKOUT, True),
        ("[type=submit s]", CHECKOUT, True),
        ('[href="/pricing"]', NAV, True),
        ('[href="/pricing/"]', NAV, False),
        ('[href^="/pri"]', NAV, True),
        ('[href^="pricing"]', NAV, False),
        ('[href^=""]', NAV, False),
        ('[href$="cing"]', NAV, True),
        ('[href$="/pri"]', NAV, False),
        ('[href*="ici"]', NAV, True),
        ('[href*="icing/"]', NAV, False),
        ("[lang|=en]", NAV, True),
        ("[lang|=en-US]", NAV, True),
        ("[lang|=e]", NAV, False),
        ("[class~=nav-link]", NAV, True),
        ("[class~=nav]", NAV, False),
        ('[class~="nav-link x"]', NAV, False),
        ("[class^=btn]", CHECKOUT, True),
        ('[class="btn btn-primary buy"]', CHECKOUT, True),
        ("[id=email-2]", SIGNUP, True),
        ('[placeholder="you@example.com"]', SIGNUP, True),
        # compounds
        ('button.btn.buy[data-sku="42"]', CHECKOUT, True),
        ('button.btn.buy[data-sku="43"]', CHECKOUT, False),
        ("a.nav-link[href^='/']", NAV, True),
        ("input.input[type=email][name=email]", SIGNUP, True),
        ("input.input[type=text]", SIGNUP, False),
        # the target is the subject: a match on an ancestor is not a match
        ("#checkout", CHECKOUT, False),
        ("form", CHECKOUT, False),
        (".panel", CHECKOUT, False),
        ("nav", NAV, False),
        # descendant and child combinators
        ("form button", CHECKOUT, True),
        ("#checkout button", CHECKOUT, True),
        ("#checkout .buy", CHECKOUT, True),
        ("form > button", CHECKOUT, True),
        ("#checkout > form > .buy", CHECKOUT, True),
        ("html body div form button", CHECKOUT, True),
        ("div > button", CHECKOUT, False),
        ("#checkout > button", CHECKOUT, False),
        ("button form", CHECKOUT, False),
        ("nav a", NAV, True),
        ("nav > a", NAV, False),
        ("nav li > a", NAV, True),
        ("header > nav > ul > li > a", NAV, True),
        ("header > ul a", NAV, False),
        ("div > span a", NESTED, True),
        ("div > span > a", NESTED, False),
        ("body > div span a", NESTED, True),
        ("div span > a", NESTED, False),
        ("body > span a", NESTED, False),
        ("div > span a", BACKTRACK, True),
        ("div > span > div > p > span > a", BACKTRACK, True),
        ("body > span a", BACKTRACK, False),
        ("p > span a", BACKTRACK, True),
        ("p > div a", BACKTRACK, False),
        ("div > div a", BACKTRACK, False),
        # selector lists
        ("a.nav-link, button.buy", NAV, True),
        ("a.nav-link, button.buy", CHECKOUT, True),
        ("a.logo, button.reset", CHECKOUT, False),
        ("a.logo,button.buy", CHECKOUT, True),
        # :not()
        ("button:not(.disabled)", CHECKOUT, True),
        ("button:not(.buy)", CHECKOUT, False),
        ("button:not([type=reset])", CHECKOUT, True),
        (":not(form > button)", CHECKOUT, False),
        (":not(div > button)", CHECKOUT, True),
    ],
)
def test_selector_matches_the_target(selector: str, hierarchy: str, expected: bool) -> None:
    assert compile_selector(selector).matches(hierarchy) is expected


@pytest.mark.parametrize("hierarchy", [None, "", "|||", ";;;", "garbage", "@", "@;|", "[=x];|"])
def test_nothing_matches_an_empty_hierarchy(hierarchy: str | None) -> None:
    assert parse_hierarchy(hierarchy) == ()
    assert not compile_selector("*").matches(hierarchy)
    assert most_specific_selector(hierarchy or "") is None


@pytest.mark.parametrize(
    ("hierarchy", "expected"),
    [
        (
            "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|",
            (
                Element("body"),
                Element(
                    "div", "checkout", frozenset({"panel"}), {"id": "checkout", "class": "panel"}
                ),
                Element(
                    "button",
                    None,
                    frozenset({"btn", "buy"}),
                    {"data-sku": "42", "class": "btn buy"},
                ),
            ),
        ),
        ("@body;|@a;.x", (Element("body"), Element("a", None, frozenset({"x"}), {"class": "x"}))),
        ("@DIV;|", (Element("div"),)),
        ("@div; .a ;@span;|", (Element("div", None, frozenset({"a"}), {"class": "a"}),)),
        ("@div;.a b;|", (Element("div", None, frozenset({"a", "b"}), {"class": "a b"}),)),
        ("@a;#x;#y;|", (Element("a", "x", frozenset(), {"id": "x"}),)),
        ("@a;zzz;!foo;;.x;|", (Element("a", None, frozenset({"x"}), {"class": "x"}),)),
        ("#only;|@a;|", (Element("", "only", frozenset(), {"id": "only"}), Element("a"))),
        ("@a;|junk|@b;|", (Element("a"), Element("b"))),
        ("@a;[href=/a;jsessionid=1];|", (Element("a", attributes={"href": "/a;jsessionid=1"}),)),
        ("@a;[title=Pricing | Acme];|", (Element("a", attributes={"title": "Pricing | Acme"}),)),
        ("@a;[data-x=a]b];|", (Element("a", attributes={"data-x": "a]b"}),)),
        ("@a;[data-x=a=b];|", (Element("a", attributes={"data-x": "a=b"}),)),
        ("@a;[title= padded ];|", (Element("a", attributes={"title": " padded "}),)),
        ("@a;[href=/x;.y;|", (Element("a", None, frozenset({"y"}), {"href": "/x", "class": "y"}),)),
        ("@a;[href=/x]", (Element("a", attributes={"href": "/x"}),)),
        ("@input;[disabled];|", (Element("input", attributes={"disabled": ""}),)),
        ("@a;[Data-X=1];[data-x=2];|", (Element("a", attributes={"data-x": "1"}),)),
        (
            "@div;[id=x];[class=a b];|",
            (Element("div", "x", frozenset({"a", "b"}), {"id": "x", "class": "a b"}),),
        ),
        ("@div;#y;[id=x];|", (Element("div", "y", frozenset(), {"id": "y"}),)),
        ("@a;[title=a\x00b];|", (Element("a", attributes={"title": "a\ufffdb"}),)),
    ],
)
def test_parse_hierarchy_is_lenient(hierarchy: str, expected: tuple[Element, ...]) -> None:
    assert parse_hierarchy(hierarchy) == expected


def test_elements_are_hashable_and_cached() -> None:
    elements = parse_hierarchy(CHECKOUT)
    assert parse_hierarchy(CHECKOUT) is elements
    assert len({*elements, *parse_hierarchy(CHECKOUT)}) == len(elements)
    assert isinstance(elements[-1].attributes, Attributes)
    assert dict(elements[-1].attributes) == {
        "type": "submit",
        "data-sku": "42",
        "class": "btn btn-primary buy",
    }


@pytest.mark.parametrize(
    ("selector", "hierarchy", "expected"),
    [
        ("*", "#only;|", True),
        ("div", "#only;|", False),
        ("#only", "#only;|", True),
        ("#x", "@div;[id=x];|", True),
        (".b", "@div;[class=a b];|", True),
        ('[href="/a;jsessionid=1"]', "@a;[href=/a;jsessionid=1];|", True),
        ('[title="Pricing | Acme"]', "@a;[title=Pricing | Acme];|", True),
        ("a", "@body;|@a;.x", True),
        ("body > a", "@body;|junk|@a;|", True),
    ],
)
def test_selectors_on_odd_hierarchies(selector: str, hierarchy: str, expected: bool) -> None:
    assert compile_selector(selector).matches(hierarchy) is expected


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ("div[", "Expected ident or '*'"),
        ("a[href=", "Expected string or ident"),
        ("[data-sku=42]", 'e.g. [data-sku="42"]'),
        ("a >", "Expected selector"),
        ("a,", "Expected selector"),
        ('[title="open', "Unclosed string"),
        ("a:hover", "':hover'"),
        ("a:nth-child(2)", "':nth-child()'"),
        ("a:has(b)", "':has()'"),
        ("a:is(b)", "':is()'"),
        ("a:where(b)", "':where()'"),
        ("a::before", "'::before'"),
        ("a + b", "sibling combinator '+'"),
        ("a ~ b", "sibling combinator '~'"),
        (":not(a + b)", "sibling combinator '+'"),
        ("svg|a", "namespace 'svg|'"),
        ("*|a", "namespace '*|'"),
        ("[xlink|href]", "namespace 'xlink|'"),
        ('[href!="/"]', "'!='"),
    ],
)
def test_invalid_selectors_are_refused(selector: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        compile_selector(selector)
    assert raised.value.code == "INVALID_SELECTOR"
    assert raised.value.field == "selector"
    assert reason in raised.value.message
    assert repr(selector) in raised.value.message


@pytest.mark.parametrize("selector", ["", "   ", "\n\t"])
def test_empty_selectors_are_refused(selector: str) -> None:
    with pytest.raises(InvalidInput, match="empty") as raised:
        compile_selector(selector)
    assert raised.value.code == "INVALID_SELECTOR"


def test_compiled_selector_is_one_condition_and_cached() -> None:
    selector = compile_selector("  #checkout button ")
    assert selector.text == "#checkout button"
    assert selector.condition_count == 1
    assert compile_selector("  #checkout button ") is selector


@pytest.mark.parametrize(
    ("hierarchy", "expected"),
    [
        (
            "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|",
            'div#checkout.panel > button.btn.buy[data-sku="42"]',
        ),
        (SIGNUP, 'input#email-2.input[type="email"][name="email"][placeholder="you@example.com"]'),
        (NAV, 'li.nav-item > a.nav-link[href="/pricing"][lang="en-US"]'),
        ("@a;|", "a"),
        ("@body;|@a;|", "body > a"),
        ("#only;|@a;|", "#only > a"),
        ("@div;.md:flex;.w-1/2;|", "div.md\\:flex.w-1\\/2"),
        ("@div;#123;|", "div#\\31 23"),
        ("@div;#-1x;|", "div#-\\31 x"),
        ("@div;.--var;|", "div.\\--var"),
        ('@a;[title=Say "hi"];|', 'a[title="Say \\"hi\\""]'),
        ("@a;[title=it's];|", 'a[title="it\'s"]'),
        ("@a;[title=a\nb];|", 'a[title="a\\a b"]'),
        # cssselect misreads backslashes, so those parts are left out (or only tested for presence)
        ("@a;.c:\\d;.e;[title=a\\b];|", "a.e[title]"),
        ("@body;|@a;#x\\y;|", "body > a"),
    ],
)
def test_most_specific_selector(hierarchy: str, expected: str) -> None:
    assert most_specific_selector(hierarchy) == expected
    assert compile_selector(expected).matches(hierarchy)


@pytest.mark.parametrize(
    "hierarchy",
    [
        CHECKOUT,
        NAV,
        SIGNUP,
        NESTED,
        BACKTRACK,
        "@body;|@div;.flex;.md:flex;.w-1/2;.hover:bg-blue-500;.[&>svg]:h-4;|",
        "@body;|@button;.!mt-0;.group/item;.data-[state=open]:block;|",
        "@body;|@section;#1st-step;|@a;#__next;.é;.🚀;|",
        "@svg;|@path;[d=M0 0L10 10];[stroke-width=1.5];|",
        '@form;|@input;[value=he said "hi" and \'bye\'];[data-json={"a":[1,2]}];|',
        "@a;[href=https://x.test/?q=a;b|c];|",
        "@div;.\t;#\x01x;[t=\x7f\x1f];|",
        "@my-widget;|@x-button;[aria-label=Close dialog];|",
        "@a;[title=ends with]];|",
        "@div;.a\\b;|@a;#i\\d;[x\\y=z];|",
        "@body;|@*;|",
    ],
)
def test_most_specific_selector_matches_its_hierarchy(hierarchy: str) -> None:
    selector = most_specific_selector(hierarchy)
    assert selector is not None
    assert compile_selector(selector).matches(hierarchy)


@pytest.mark.parametrize(
    "other",
    [
        "@body;|@div;#checkout;.panel;|@button;.btn;[data-sku=42];|",
        "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=43];|",
        "@body;|@div;#checkout;|@button;.btn;.buy;[data-sku=42];|",
        "@body;|@div;#checkout;.panel;|@a;.btn;.buy;[data-sku=42];|",
        "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|@span;|",
    ],
)
def test_most_specific_selector_is_specific(other: str) -> None:
    hierarchy = "@body;|@div;#checkout;.panel;|@button;.btn;.buy;[data-sku=42];|"
    selector = compile_selector(most_specific_selector(hierarchy) or "")
    assert not selector.matches(other)


_NAME_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=";|"
)
_NAMES = st.text(_NAME_CHARACTERS, min_size=1, max_size=12)
_TAGS = st.sampled_from(["div", "a", "button", "span", "my-widget", "svg"]) | _NAMES.map(str.lower)
_ATTRIBUTE_NAMES = (
    st.text(
        st.characters(
            blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=";|=]"
        ),
        min_size=1,
        max_size=12,
    )
    .map(str.lower)
    .filter(lambda name: name not in ("id", "class"))
)
_VALUES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
).filter(lambda value: "];" not in value and "]|" not in value)


@st.composite
def _elements(draw: st.DrawFn) -> tuple[str, Element]:
    tag = draw(_TAGS)
    identifier = draw(st.none() | _NAMES)
    classes = draw(st.lists(_NAMES, max_size=3))
    attributes = draw(st.lists(st.tuples(_ATTRIBUTE_NAMES, _VALUES), max_size=3))
    text = "@" + tag + ";"
    text += "" if identifier is None else "#" + identifier + ";"
    text += "".join("." + name + ";" for name in classes)
    text += "".join(f"[{name}={value}];" for name, value in attributes)
    expected = dict(reversed(attributes))
    if identifier is not None:
        expected["id"] = identifier
    if classes:
        expected["class"] = " ".join(dict.fromkeys(classes))
    element = Element(tag, identifier, frozenset(classes), Attributes(expected))
    return text + "|", element


@given(st.lists(_elements(), min_size=1, max_size=6))
def test_generated_hierarchies_parse_and_round_trip(written: list[tuple[str, Element]]) -> None:
    hierarchy = "".join(text for text, _ in written)
    assert parse_hierarchy(hierarchy) == tuple(element for _, element in written)
    selector = most_specific_selector(hierarchy)
    assert selector is not None
    assert compile_selector(selector).matches(hierarchy)


@given(st.text())
def test_any_text_is_a_hierarchy(hierarchy: str) -> None:
    parse_hierarchy(hierarchy)
    selector = most_specific_selector(hierarchy)
    if selector is not None:
        assert compile_selector(selector).matches(hierarchy)


_SELECTOR_PIECES = st.sampled_from([*"ab*#.[]=^$~|>+ ,:()\"'\\-_1", "not", "div", "\x00"])


@given(st.lists(_SELECTOR_PIECES).map("".join))
def test_any_text_compiles_or_is_refused(text: str) -> None:
    try:
        selector = compile_selector(text)
    except InvalidInput as error:
        assert error.code == "INVALID_SELECTOR"
    else:
        selector.matches(CHECKOUT)


def _reference_match(tags: list[str], combinators: list[str], hierarchy: list[str]) -> bool:
    """Every placement tried, exponentially: the plain meaning of the combinators."""

    def placed(step: int, position: int) -> bool:
        if tags[step] not in ("*", hierarchy[position]):
            return False
        if step == 0:
            return True
        if combinators[step - 1] == ">":
            return position > 0 and placed(step - 1, position - 1)
        return any(placed(step - 1, ancestor) for ancestor in range(position))

    return placed(len(tags) - 1, len(hierarchy) - 1)


@given(
    st.lists(st.sampled_from("abc*"), min_size=1, max_size=5),
    st.lists(st.sampled_from([" ", ">"]), min_size=4, max_size=4),
    st.lists(st.sampled_from("abc"), min_size=1, max_size=9),
)
def test_combinators_agree_with_trying_every_placement(
    tags: list[str], combinators: list[str], hierarchy: list[str]
) -> None:
    combinators = combinators[: len(tags) - 1]
    text = tags[0] + "".join(
        f" {combinator} {tag}" for combinator, tag in zip(combinators, tags[1:], strict=True)
    )
    written = "".join(f"@{tag};|" for tag in hierarchy)
    expected = _reference_match(tags, combinators, hierarchy)
    assert compile_selector(text).matches(written) is expected


# ---------------------------------------------------------------- issue 17: bounded matching


def _reference_parse(hierarchy: str) -> tuple[Element, ...]:
    """The parser before issue 17, one character at a time: the new one must read alike."""
    import re

    from services.hierarchies import _ElementBuilder

    text = re.sub("[\x00\ud800-\udfff]", "\ufffd", hierarchy)
    elements: list[Element] = []
    builder = _ElementBuilder()
    position, end = 0, len(text)

    def token_end(start: int) -> int:
        found = re.compile("[;|]").search(text, start)
        return end if found is None else found.start()

    while position < end:
        char = text[position]
        if char == "|":
            if (element := builder.build()) is not None:
                elements.append(element)
            builder = _ElementBuilder()
            position += 1
        elif char == ";" or char.isspace():
            position += 1
        elif char == "[":
            closing = re.compile(r"\](?=[;|]|\Z)").search(text, position)
            stop = token_end(position) if closing is None else closing.start()
            builder.add_attribute(text[position + 1 : stop])
            position = stop if closing is None else closing.end()
        else:
            stop = token_end(position)
            builder.add_token(text[position:stop])
            position = stop
    if (element := builder.build()) is not None:
        elements.append(element)
    return tuple(elements)


_HIERARCHY_PIECES = st.sampled_from(
    [*"@#.[]=;| \tab", "@div", ".x", "#i", "[k=v]", "[k]", "];", "]|", "\x00", "@A"]
)


@given(st.lists(_HIERARCHY_PIECES, max_size=40).map("".join))
def test_the_parser_reads_as_before(hierarchy: str) -> None:
    assert parse_hierarchy(hierarchy) == _reference_parse(hierarchy)


def _reference_selector_match(compounds: list[str], combinators: list[str], hierarchy: str) -> bool:
    """Tags, one class, :not() of a compound and combinators, by trying every placement."""
    elements = parse_hierarchy(hierarchy)

    def compound_matches(compound: str, element: Element) -> bool:
        compound, _, negated = compound.partition(":not(")
        tag, _, name = compound.partition(".")
        if tag not in ("*", "") and tag != element.tag:
            return False
        if name and name not in element.classes:
            return False
        return not negated or not compound_matches(negated[:-1], element)

    def placed(step: int, position: int) -> bool:
        if not compound_matches(compounds[step], elements[position]):
            return False
        if step == 0:
            return True
        if combinators[step - 1] == ">":
            return position > 0 and placed(step - 1, position - 1)
        return any(placed(step - 1, ancestor) for ancestor in range(position))

    return bool(elements) and placed(len(compounds) - 1, len(elements) - 1)


_COMPOUNDS = st.builds(
    lambda tag, name, negated: tag + name + negated,
    st.sampled_from(["a", "b", "*"]),
    st.sampled_from(["", ".x", ".y"]),
    st.sampled_from(["", ":not(.x)", ":not(b)", ":not(a.y)"]),
)
_TAGGED = st.builds(
    lambda tag, names: f"@{tag};" + "".join(f".{n};" for n in names) + "|",
    st.sampled_from("abc"),
    st.lists(st.sampled_from("xy"), max_size=2),
)


@given(
    st.lists(_COMPOUNDS, min_size=1, max_size=5),
    st.lists(st.sampled_from([" ", ">"]), min_size=4, max_size=4),
    st.lists(_TAGGED, min_size=1, max_size=8),
)
def test_compounds_and_negations_agree_with_trying_every_placement(
    compounds: list[str], combinators: list[str], hierarchy: list[str]
) -> None:
    combinators = combinators[: len(compounds) - 1]
    text = compounds[0] + "".join(
        f" {combinator} {part}" for combinator, part in zip(combinators, compounds[1:], strict=True)
    )
    written = "".join(hierarchy)
    expected = _reference_selector_match(compounds, combinators, written)
    assert compile_selector(text).matches(written) is expected


def _runs(length: int, runs: int) -> str:
    """Runs of `length` a's, each closed by a c, then the target b: at most 4 KB."""
    return ("@a;|" * length + "@c;|") * runs + "@b;|"


# Shapes that made the backtracking matcher quadratic (tens of milliseconds per event each),
# with the answer a plain reading gives.
ADVERSARIAL = [
    ("a > " * 49 + "a b", _runs(49, 20), False),  # every placement of `a` re-walked the chain
    ("a > " * 48 + "a b", _runs(49, 20), True),
    (", ".join(["a > " * 9 + "a b"] * 20), _runs(9, 90), False),
    ("c " + "a > " * 30 + "a b", _runs(49, 20), True),
    ("* " * 64 + "*", "@a;|" * 1000, True),
    ("* " * 64 + "*", "@a;|" * 63, False),  # 65 compounds, 64 elements with the prefix
    ("* > " * 64 + "b", "@a;|" * 64 + "@b;|", True),
    ("b:not(" + "a > " * 60 + "c) b", _runs(49, 20) + "@b;|", True),
    (
        " ".join(f"[k^=v{i}]" for i in range(60)),
        "".join(f"@a;[k=v{i}];|" for i in range(300)),
        False,
    ),
]


def test_adversarial_selectors_match_in_bounded_time() -> None:
    """A generous bound against the old quadratic cost: all of them, 20 times, in 2 s."""
    selectors = [
        (compile_selector(text), hierarchy, expected) for text, hierarchy, expected in ADVERSARIAL
    ]
    started = time.monotonic()
    for round in range(20):
        for selector, hierarchy, expected in selectors:
            # A new text each round: nothing cached from the round before.
            assert selector.matches(f"@x{round};|{hierarchy}") is expected
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("text", "code", "named", "matches"),
    [
        ("a" * (limits.MAX_SELECTOR_LENGTH + 1), "SELECTOR_TOO_LONG", "characters", False),
        (
            ", ".join(["a"] * (limits.MAX_SELECTOR_ALTERNATIVES + 1)),
            "TOO_MANY_SELECTORS",
            "alternatives",
            False,
        ),
        (
            "a " * (limits.MAX_SELECTOR_COMBINATORS + 1) + "b",
            "SELECTOR_TOO_DEEP",
            "combinators",
            True,
        ),
        (
            f"b:not({'a > ' * (limits.MAX_SELECTOR_COMBINATORS + 1)}a)",
            "SELECTOR_TOO_DEEP",
            "combinators",
            True,
        ),
    ],
)
def test_selectors_beyond_the_limits_are_refused_by_name(
    text: str, code: str, named: str, matches: bool
) -> None:
    with pytest.raises(InvalidInput) as raised:
        compile_selector(text)
    assert raised.value.code == code
    assert raised.value.field == "selector"
    assert named in raised.value.message
    # Definitions stored before a limit was lowered still match.
    assert compile_selector(text, limited=False).matches("@a;|" * 80 + "@b;|") is matches


def test_selectors_at_the_limits_compile() -> None:
    compile_selector(", ".join(["a"] * limits.MAX_SELECTOR_ALTERNATIVES))
    compile_selector("a " * limits.MAX_SELECTOR_COMBINATORS + "b")
    compile_selector("a" * limits.MAX_SELECTOR_LENGTH)
