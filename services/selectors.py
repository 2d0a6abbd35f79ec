"""CSS selectors matched against Heap-style element hierarchies, for event definitions.

A hierarchy lists a clicked element's ancestry, outermost first, one element per
``@tag;#id;.class;[attr=value];|``. The format has no escaping, so reading it is lenient
and never fails:

- Tokens are cut at ``;`` and elements at ``|``; empty and unknown tokens are skipped, a
  missing final ``|`` is fine, and a run without any known token is not an element.
  Tag, id and class tokens are stripped; the first tag and the first id win.
- An ``[attr=value]`` token runs to the first ``]`` followed by ``;``, ``|`` or the end, so
  values may hold ``;``, ``|`` and ``]`` but not ``];`` or ``]|``. A ``[`` token without
  such an end stops at the next ``;`` or ``|``. The first ``=`` ends the name; a token
  without one is an attribute with an empty value; names are lower-cased; the first
  occurrence of a name wins. Values are kept verbatim.
- ``#id`` and ``.class`` also appear as the ``id`` and ``class`` attributes (overriding
  ``[id=]``/``[class=]`` tokens, which otherwise supply them), as in the DOM.
- An element without a tag token has the tag ``""``: only ``*`` matches it.
- U+0000 and lone surrogates become U+FFFD, as cssselect reads them in selectors.

Selectors are parsed by cssselect. The target (last element) is the subject; supported are
type and universal selectors, ``#id``, ``.class``, every standard attribute operator (with
the ``i``/``s`` flags), ``:not(...)``, the descendant and child combinators and selector
lists. Tags and attribute names compare case-insensitively, everything else exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from cssselect import parser as css

from services.errors import InvalidInput

_FOLDED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_TOKEN_END = re.compile("[;|]")
_ATTRIBUTE_END = re.compile(r"\](?=[;|]|\Z)")
_CHILD = ">"
_DESCENDANT = " "


class Attributes(Mapping[str, str]):
    """An element's attributes: an immutable, hashable mapping kept in hierarchy order."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def __repr__(self) -> str:
        return f"Attributes({self._values!r})"

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        # Matching calls this in its inner loop; Mapping.get would go through a try/except.
        return self._values.get(name, default)


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a hierarchy."""

    tag: str
    id: str | None = None
    classes: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = Attributes()

    def __post_init__(self) -> None:
        # Elements are cached and hashed, so whatever mapping the caller gave is frozen.
        if not isinstance(self.attributes, Attributes):
            object.__setattr__(self, "attributes", Attributes(self.attributes))
        if not isinstance(self.classes, frozenset):
            object.__setattr__(self, "classes", frozenset(self.classes))


class _ElementBuilder:
    """Collects one element's tokens while a hierarchy is read."""

    __slots__ = ("tag", "id", "classes", "attributes")

    def __init__(self) -> None:
        self.tag: str | None = None
        self.id: str | None = None
        self.classes: dict[str, None] = {}  # an ordered set: the class attribute keeps order
        self.attributes: dict[str, str] = {}

    def add_token(self, token: str) -> None:
        sigil, value = token[0], token[1:].strip()
        if not value:
            return
        if sigil == "@" and self.tag is None:
            self.tag = value.lower()
        elif sigil == "#" and self.id is None:
            self.id = value
        elif sigil == ".":
            self.classes.update(dict.fromkeys(value.split()))

    def add_attribute(self, body: str) -> None:
        name, _, value = body.partition("=")
        name = name.strip().lower()
        if name:
            self.attributes.setdefault(name, value)

    def build(self) -> Element | None:
        if self.tag is None and self.id is None and not self.classes and not self.attributes:
            return None
        attributes = dict(self.attributes)
        if self.id is not None:
            attributes["id"] = self.id
        if self.classes:
            attributes["class"] = " ".join(self.classes)
        return Element(
            tag=self.tag or "",
            id=attributes.get("id") or None,
            classes=frozenset(attributes.get("class", "").split()),
            attributes=Attributes(attributes),
        )


@lru_cache(maxsize=4096)
def parse_hierarchy(hierarchy: str | None) -> tuple[Element, ...]:
    """The elements of a hierarchy, outermost first; never raises (rules in the module doc)."""
    if not hierarchy:
        return ()
    text = _FOLDED_CHARACTERS.sub("\ufffd", hierarchy)
    elements: list[Element] = []
    builder = _ElementBuilder()
    position, end = 0, len(text)
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
            closing = _ATTRIBUTE_END.search(text, position)
            if closing is not None:
                builder.add_attribute(text[position + 1 : closing.start()])
                position = closing.end()
            else:
                stop = _token_end(text, position)
                builder.add_attribute(text[position + 1 : stop])
                position = stop
        else:
            stop = _token_end(text, position)
            builder.add_token(text[position:stop])
            position = stop
    if (element := builder.build()) is not None:
        elements.append(element)
    return tuple(elements)


def _token_end(text: str, start: int) -> int:
    found = _TOKEN_END.search(text, start)
    return len(text) if found is None else found.start()


def _includes(actual: str, wanted: str) -> bool:
    return wanted in actual.split()


def _dash_match(actual: str, wanted: str) -> bool:
    return actual == wanted or actual.startswith(wanted + "-")


def _prefix(actual: str, wanted: str) -> bool:
    # CSS says an empty prefix, suffix or substring matches nothing.
    return bool(wanted) and actual.startswith(wanted)


def _suffix(actual: str, wanted: str) -> bool:
    return bool(wanted) and actual.endswith(wanted)


def _substring(actual: str, wanted: str) -> bool:
    return bool(wanted) and wanted in actual


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "exists": lambda actual, wanted: True,
    "=": str.__eq__,
    "~=": _includes,
    "|=": _dash_match,
    "^=": _prefix,
    "$=": _suffix,
    "*=": _substring,
}


@dataclass(frozen=True, slots=True)
class _AttributeTest:
    name: str
    compare: Callable[[str, str], bool]
    value: str
    ignore_case: bool

    def matches(self, element: Element) -> bool:
        actual = element.attributes.get(self.name)
        if actual is None:
            return False
        return self.compare(actual.lower() if self.ignore_case else actual, self.value)


@dataclass(frozen=True, slots=True)
class _Compound:
    tag: str | None
    ids: tuple[str, ...]
    classes: frozenset[str]
    attributes: tuple[_AttributeTest, ...]
    negations: tuple[_Complex, ...]

    def matches(self, elements: tuple[Element, ...], index: int) -> bool:
        element = elements[index]
        if self.tag is not None and element.tag != self.tag:
            return False
        # The guards skip building generators for the empty parts, which most compounds have.
        if self.ids and any(identifier != element.id for identifier in self.ids):
            return False
        if self.classes and not self.classes <= element.classes:
            return False
        if self.attributes and not all(test.matches(element) for test in self.attributes):
            return False
        return not (
            self.negations and any(negation.matches(elements, index) for negation in self.negations)
        )


@dataclass(frozen=True, slots=True)
class _Complex:
    compounds: tuple[_Compound, ...]  # right to left: the subject first
    combinators: tuple[str, ...]  # combinators[k] joins compounds[k] to compounds[k + 1]

    def matches(self, elements: tuple[Element, ...], index: int) -> bool:
        """Whether elements[index] is the subject; linear, not exponential, backtracking."""
        if not self.compounds[0].matches(elements, index):
            return False
        # A failed child step retries only the closest descendant step to its right, and a
        # descendant step that runs out of ancestors fails the whole selector: any other
        # placement would leave it fewer ancestors (Servo's selector matching does the same).
        retry: tuple[int, int] | None = None  # (step, next ancestor to try) of that step
        step, position = 0, index
        while step < len(self.combinators):
            following = self.compounds[step + 1]
            if self.combinators[step] == _CHILD:
                if position > 0 and following.matches(elements, position - 1):
                    step, position = step + 1, position - 1
                    continue
                if position == 0 or retry is None:
                    return False
                step, start = retry
            else:
                start = position - 1
            following = self.compounds[step + 1]
            while start >= 0 and not following.matches(elements, start):
                start -= 1
            if start < 0:
                return False
            retry = (step, start - 1)
            step, position = step + 1, start
        return True


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector list, matched against the target of a hierarchy."""

    text: str
    _alternatives: tuple[_Complex, ...] = field(repr=False)

    def matches(self, hierarchy: str | None) -> bool:
        """Whether the hierarchy's target (its last element) matches any alternative."""
        elements = parse_hierarchy(hierarchy)
        if not elements:
            return False
        target = len(elements) - 1
        return any(alternative.matches(elements, target) for alternative in self._alternatives)

    @property
    def condition_count(self) -> int:
        """How much the selector weighs in the definition precedence rule: one condition."""
        return 1


class _Unsupported(Exception):
    """A construct cssselect parses but a hierarchy cannot answer."""


@lru_cache(maxsize=1024)
def compile_selector(text: str) -> Selector:
    """Compile a CSS selector (list); raises InvalidInput for bad or unsupported ones."""
    source = text.strip()
    if not source:
        raise _invalid("The selector is empty; write one such as 'button.buy' or '#nav a'.")
    try:
        parsed = css.parse(source)
        alternatives = tuple(_compile_alternative(selector) for selector in parsed)
    except css.SelectorError as error:
        hint = ""
        if "got <NUMBER" in str(error):
            hint = '; quote values that are not identifiers, e.g. [data-sku="42"]'
        raise _invalid(f"Selector {source!r} is not valid CSS: {error}{hint}.") from error
    except _Unsupported as error:
        raise _invalid(
            f"Selector {source!r} uses {error}, which event definitions do not support; "
            "use tags, #ids, .classes, [attributes], :not(), descendant (space) and "
            "child (>) combinators, and commas."
        ) from error
    return Selector(source, alternatives)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, field="selector", code="INVALID_SELECTOR")


def _compile_alternative(selector: css.Selector) -> _Complex:
    if selector.pseudo_element is not None:
        raise _Unsupported(f"the pseudo-element '::{selector.pseudo_element}'")
    return _compile_complex(selector.parsed_tree)


def _compile_complex(tree: css.Tree) -> _Complex:
    compounds: list[_Compound] = []
    combinators: list[str] = []
    while isinstance(tree, css.CombinedSelector):
        if tree.combinator not in (_CHILD, _DESCENDANT):
            raise _Unsupported(f"the sibling combinator '{tree.combinator}'")
        compounds.append(_compile_compound(tree.subselector))
        combinators.append(tree.combinator)
        tree = tree.selector
    compounds.append(_compile_compound(tree))
    return _Complex(tuple(compounds), tuple(combinators))


def _compile_compound(tree: css.Tree) -> _Compound:
    ids: list[str] = []
    classes: set[str] = set()
    attributes: list[_AttributeTest] = []
    negations: list[_Complex] = []
    while not isinstance(tree, css.Element):
        if isinstance(tree, css.Hash):
            ids.append(tree.id)
        elif isinstance(tree, css.Class):
            classes.add(tree.class_name)
        elif isinstance(tree, css.Attrib):
            attributes.append(_compile_attribute(tree))
        elif isinstance(tree, css.Negation):
            negations.append(_compile_complex(tree.subselector))
        else:
            raise _Unsupported(_describe(tree))
        tree = tree.selector
    if tree.namespace is not None:
        raise _Unsupported(f"the namespace '{tree.namespace}|'")
    tag = tree.element.lower() if tree.element else None
    return _Compound(tag, tuple(ids), frozenset(classes), tuple(attributes), tuple(negations))


def _compile_attribute(attrib: css.Attrib) -> _AttributeTest:
    if attrib.namespace is not None:
        raise _Unsupported(f"the namespace '{attrib.namespace}|'")
    compare = _OPERATORS.get(attrib.operator)
    if compare is None:
        raise _Unsupported(f"the non-standard attribute operator '{attrib.operator}'")
    ignore_case = attrib.flag == "i"
    value = "" if attrib.value is None else str(attrib.value.value)
    return _AttributeTest(
        attrib.attrib.lower(), compare, value.lower() if ignore_case else value, ignore_case
    )


def _describe(tree: css.Tree) -> str:
    if isinstance(tree, css.Pseudo):
        return f"the pseudo-class ':{tree.ident}'"
    if isinstance(tree, css.Function):
        return f"the pseudo-class ':{tree.name}()'"
    if isinstance(tree, css.Relation):
        return "the pseudo-class ':has()'"
    if isinstance(tree, css.Matching):
        return "the pseudo-class ':is()'"
    if isinstance(tree, css.SpecificityAdjustment):
        return "the pseudo-class ':where()'"
    return type(tree).__name__


def most_specific_selector(hierarchy: str) -> str | None:
    """A selector for the target in full, under its parent in full unless the target has an id."""
    elements = parse_hierarchy(hierarchy)
    if not elements:
        return None
    target = elements[-1]
    selector = _compound_text(target)
    if len(elements) == 1 or (target.id is not None and _expressible(target.id)):
        return selector
    parent = _compound_text(elements[-2])
    return selector if parent == "*" else f"{parent} > {selector}"


def _expressible(value: str) -> bool:
    # cssselect unescapes twice (code points, then backslashes), so a value holding a
    # backslash reads back differently from what CSS means; such parts are left out.
    return "\\" not in value


def _compound_text(element: Element) -> str:
    parts = [_identifier(element.tag) if _expressible(element.tag) else ""]
    if element.id is not None and _expressible(element.id):
        parts.append("#" + _identifier(element.id))
    parts.extend("." + _identifier(name) for name in sorted(element.classes) if _expressible(name))
    for name, value in element.attributes.items():
        if name in ("id", "class") or not _expressible(name):
            continue
        if _expressible(value):
            parts.append(f"[{_identifier(name)}={_string(value)}]")
        else:
            parts.append(f"[{_identifier(name)}]")
    return "".join(parts) or "*"


def _identifier(value: str) -> str:
    """CSSOM's identifier serialization, in the CSS 2.1 grammar cssselect reads."""
    escaped: list[str] = []
    for index, char in enumerate(value):
        code = ord(char)
        starts = index == 0 or (index == 1 and value[0] == "-")
        if code < 0x20 or code == 0x7F or ("0" <= char <= "9" and starts):
            escaped.append(f"\\{code:x} ")
        elif char == "-" and index == 0 and value[1:2] in ("", "-"):
            escaped.append("\\-")
        elif code >= 0x80 or char in "_-" or (char.isascii() and char.isalnum()):
            escaped.append(char)
        else:
            escaped.append("\\" + char)
    return "".join(escaped)


def _string(value: str) -> str:
    escaped: list[str] = []
    for char in value:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            escaped.append(f"\\{code:x} ")
        elif char == '"':
            escaped.append('\\"')
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
