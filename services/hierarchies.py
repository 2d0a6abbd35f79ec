"""Heap-style element hierarchies: read leniently, and indexed for selector matching.

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

`index_hierarchy` adds, for services/selectors.py, a bit mask of elements per tag, id, class
and attribute value (bit i stands for elements[i]), built once per hierarchy.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

_FOLDED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_TOKEN_END = re.compile("[;|]")
_ATTRIBUTE_END = re.compile(r"\](?=[;|]|\Z)")


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
        if self.id is None and not self.classes and not self.attributes:
            # The usual element, a bare tag, without the copies below.
            return None if self.tag is None else Element(self.tag)
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


# A 4 KB hierarchy can hold a thousand elements, about 400 KiB parsed: the caches stay small.
# Matching tests one event against all its criteria in a row, so a few entries suffice.
_CACHED_HIERARCHIES = 64


@lru_cache(maxsize=_CACHED_HIERARCHIES)
def parse_hierarchy(hierarchy: str | None) -> tuple[Element, ...]:
    """The elements of a hierarchy, outermost first; never raises (rules in the module doc)."""
    return _parse(hierarchy)


def _parse(hierarchy: str | None) -> tuple[Element, ...]:
    if not hierarchy:
        return ()
    text = _FOLDED_CHARACTERS.sub("\ufffd", hierarchy)
    elements: list[Element] = []
    # Elements written alike are read once: hierarchies repeat `@div;|` and the like.
    seen: dict[str, Element | None] = {}
    if "[" not in text:  # no attributes: the elements are what lies between the `|`s
        for segment in text.split("|"):
            element = (
                seen[segment]
                if segment in seen
                else seen.setdefault(segment, _plain_element(segment))
            )
            if element is not None:
                elements.append(element)
        return tuple(elements)
    closings: list[int] | None = None
    position, end = 0, len(text)
    while position < end:
        pipe = text.find("|", position)
        stop = end if pipe < 0 else pipe
        if text.find("[", position, stop) < 0:
            segment = text[position:stop]
            if segment in seen:
                element = seen[segment]
            else:
                element = seen[segment] = _plain_element(segment)
            position = stop + 1
        else:
            if closings is None:
                closings = [found.start() for found in _ATTRIBUTE_END.finditer(text)]
            element, position = _element_with_attributes(text, position, closings)
        if element is not None:
            elements.append(element)
    return tuple(elements)


def _plain_element(segment: str) -> Element | None:
    """An element written without `[`: its tokens are what lies between the `;`s."""
    builder = _ElementBuilder()
    for token in segment.split(";"):
        token = token.lstrip()
        if token:
            builder.add_token(token)
    return builder.build()


def _element_with_attributes(
    text: str, position: int, closings: list[int]
) -> tuple[Element | None, int]:
    """The element starting at `position` and where the next one starts (past its `|`)."""
    builder = _ElementBuilder()
    end = len(text)
    while position < end:
        char = text[position]
        if char == "|":
            return builder.build(), position + 1
        if char == ";" or char.isspace():
            position += 1
        elif char == "[":
            # The first `]` before `;`, `|` or the end closes it (found by bisection, so
            # that many unclosed `[` cost no rescans); without one, the token ends as usual.
            after = bisect_left(closings, position)
            if after < len(closings):
                builder.add_attribute(text[position + 1 : closings[after]])
                position = closings[after] + 1
            else:
                stop = _token_end(text, position)
                builder.add_attribute(text[position + 1 : stop])
                position = stop
        else:
            stop = _token_end(text, position)
            builder.add_token(text[position:stop])
            position = stop
    return builder.build(), position


def _token_end(text: str, start: int) -> int:
    found = _TOKEN_END.search(text, start)
    return len(text) if found is None else found.start()


class Hierarchy:
    """A parsed hierarchy indexed for matching: bit i of a mask stands for elements[i]."""

    __slots__ = (
        "elements",
        "everything",
        "target",
        "tags",
        "ids",
        "classes",
        "memo",
        "_attributes",
    )

    def __init__(self, elements: tuple[Element, ...]) -> None:
        self.elements = elements
        self.everything = (1 << len(elements)) - 1
        self.target = 1 << (len(elements) - 1) if elements else 0
        self.tags: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.classes: dict[str, int] = {}
        self._attributes: dict[str, dict[str, int]] | None = None
        # The mask of each selector part matched so far, shared by every selector: parts
        # are shared between selectors (`_SHARED`), so 99 definitions alike cost one.
        self.memo: dict[object, int] = {}
        for element, bits in _positions(elements):
            self.tags[element.tag] = self.tags.get(element.tag, 0) | bits
            if element.id is not None:
                self.ids[element.id] = self.ids.get(element.id, 0) | bits
            for name in element.classes:
                self.classes[name] = self.classes.get(name, 0) | bits

    def attribute_values(self, name: str) -> dict[str, int]:
        """The elements holding each value of the attribute `name` (indexed on first use)."""
        if self._attributes is None:
            index: dict[str, dict[str, int]] = {}
            for element, bits in _positions(self.elements):
                for key, value in element.attributes.items():
                    values = index.setdefault(key, {})
                    values[value] = values.get(value, 0) | bits
            self._attributes = index
        return self._attributes.get(name, {})


def _positions(elements: tuple[Element, ...]) -> list[tuple[Element, int]]:
    """Each distinct element (parsing shares equal ones) with the mask of its positions."""
    found: dict[int, tuple[Element, bytearray]] = {}
    size = (len(elements) + 7) // 8
    for position, element in enumerate(elements):
        entry = found.get(id(element))
        if entry is None:
            entry = found[id(element)] = (element, bytearray(size))
        entry[1][position >> 3] |= 1 << (position & 7)
    return [(element, int.from_bytes(bits, "little")) for element, bits in found.values()]


@lru_cache(maxsize=_CACHED_HIERARCHIES)
def index_hierarchy(hierarchy: str | None) -> Hierarchy:
    """The hierarchy parsed and indexed for `Selector.matches` (cached like parse_hierarchy)."""
    return Hierarchy(_parse(hierarchy))
