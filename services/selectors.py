"""CSS selectors matched against Heap-style element hierarchies, for event definitions.

A hierarchy lists a clicked element's ancestry, outermost first (services/hierarchies.py
reads it).

Selectors are parsed by cssselect. The target (last element) is the subject; supported are
type and universal selectors, ``#id``, ``.class``, every standard attribute operator (with
the ``i``/``s`` flags), ``:not(...)``, the descendant and child combinators and selector
lists. Tags and attribute names compare case-insensitively, everything else exactly.

Matching costs time linear in the selector and the hierarchy, whatever either holds (issue
17): a hierarchy is indexed once (tag, id and class to a bit mask of elements) and each
selector part becomes a mask, combinators being shifts of masks, without backtracking.
`compile_selector` refuses selectors beyond the limits of services/limits.py by name.

Length: the selector compiler and its mask matcher are one algorithm; hierarchy parsing
and indexing live in services/hierarchies.py.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from cssselect import parser as css

from services import limits
from services.errors import InvalidInput
from services.hierarchies import Attributes, Element, Hierarchy, index_hierarchy, parse_hierarchy

__all__ = [
    "Attributes",
    "Element",
    "Hierarchy",
    "Selector",
    "compile_selector",
    "index_hierarchy",
    "most_specific_selector",
    "parse_hierarchy",
]

T = TypeVar("T")

_MEMO_LIMIT = 2048  # masks memoised per cached hierarchy (about 200 bytes each)
_CHILD = ">"
_DESCENDANT = " "


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


_equals = str.__eq__

_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "exists": lambda actual, wanted: True,
    "=": _equals,
    "~=": _includes,
    "|=": _dash_match,
    "^=": _prefix,
    "$=": _suffix,
    "*=": _substring,
}


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class _AttributeTest:
    name: str
    compare: Callable[[str, str], bool]
    value: str
    ignore_case: bool

    def passes(self, element: Element) -> bool:
        """Whether one element's attribute passes."""
        actual = element.attributes.get(self.name)
        if actual is None:
            return False
        return self.compare(actual.lower() if self.ignore_case else actual, self.value)

    def mask(self, hierarchy: Hierarchy) -> int:
        """The elements whose attribute passes, each distinct value tested once."""
        values = hierarchy.attribute_values(self.name)
        if self.compare is _equals and not self.ignore_case:
            return values.get(self.value, 0)
        found = 0
        for actual, elements in values.items():
            if self.compare(actual.lower() if self.ignore_case else actual, self.value):
                found |= elements
        return found


# Compiled parts compare by identity (eq=False): compilation shares equal parts, so that a
# match memoises each distinct part once, and hashing one never walks a nested selector.
@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class _Compound:
    tag: str | None
    ids: tuple[str, ...]
    classes: frozenset[str]
    attributes: tuple[_AttributeTest, ...]
    negations: tuple[_Complex, ...]

    def may_match(self, element: Element) -> bool:
        """Whether the element passes this compound, :not() aside: a quick first test."""
        if self.tag is not None and element.tag != self.tag:
            return False
        if self.ids and any(identifier != element.id for identifier in self.ids):
            return False
        if self.classes and not self.classes <= element.classes:
            return False
        return all(test.passes(element) for test in self.attributes)

    def mask(self, hierarchy: Hierarchy, memo: dict[object, int]) -> int:
        """The elements this compound matches, from the hierarchy's indexes."""
        found = memo.get(self)
        if found is not None:
            return found
        found = hierarchy.everything if self.tag is None else hierarchy.tags.get(self.tag, 0)
        for identifier in self.ids:
            found &= hierarchy.ids.get(identifier, 0)
        for name in self.classes:
            found &= hierarchy.classes.get(name, 0)
        for test in self.attributes:
            if not found:
                break
            tested = memo.get(test)
            if tested is None:
                tested = memo[test] = test.mask(hierarchy)
            found &= tested
        for negation in self.negations:
            if not found:
                break
            found &= ~negation.mask(hierarchy, memo)
        memo[self] = found
        return found


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class _Complex:
    compounds: tuple[_Compound, ...]  # right to left: the subject first
    combinators: tuple[str, ...]  # combinators[k] joins compounds[k] to compounds[k + 1]

    def mask(self, hierarchy: Hierarchy, memo: dict[object, int]) -> int:
        """The elements that match as the subject, all at once: O(compounds) mask steps.

        Bit i stands for elements[i], whose ancestors are exactly elements[:i] (a hierarchy
        is one chain). Going from the outermost compound inwards, `placed` holds where the
        compounds so far can sit: a child step keeps those whose parent was placed, a
        descendant step those above the outermost placed element. No backtracking, so the
        cost is linear in the selector whatever the hierarchy.
        """
        found = memo.get(self)
        if found is not None:
            return found
        last = len(self.compounds) - 1
        placed = self.compounds[last].mask(hierarchy, memo)
        for step in range(last - 1, -1, -1):
            if not placed:
                break
            if self.combinators[step] == _CHILD:
                reachable = placed << 1
            else:
                lowest = placed & -placed
                reachable = ~((lowest << 1) - 1)
            placed = reachable & self.compounds[step].mask(hierarchy, memo)
        memo[self] = placed
        return placed


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector list, matched against the target of a hierarchy."""

    text: str
    _alternatives: tuple[_Complex, ...] = field(repr=False)
    depth: int = 0  # the most combinators chained in one alternative (or inside :not())

    def matches(self, hierarchy: str | Hierarchy | None) -> bool:
        """Whether the hierarchy's target (its last element) matches any alternative.

        Time is linear in the selector's length plus the hierarchy's (indexing it, once).
        """
        indexed = hierarchy if isinstance(hierarchy, Hierarchy) else index_hierarchy(hierarchy)
        target = indexed.target
        if not target:
            return False
        memo = indexed.memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        last = indexed.elements[-1]
        for alternative in self._alternatives:
            # The subject first, on the target alone: most alternatives fail there.
            if (
                alternative.compounds[0].may_match(last)
                and alternative.mask(indexed, memo) & target
            ):
                return True
        return False

    @property
    def condition_count(self) -> int:
        """How much the selector weighs in the definition precedence rule: one condition."""
        return 1


class _Unsupported(Exception):
    """A construct cssselect parses but a hierarchy cannot answer."""


def compile_selector(text: str, *, limited: bool = True) -> Selector:
    """Compile a CSS selector (list); raises InvalidInput for bad, unsupported or too big ones.

    `limited=False` skips the size limits (services/limits.py), for stored definitions that
    were saved before a limit was lowered: matching them must not fail.
    """
    source = text.strip()
    if not source:
        raise _invalid("The selector is empty; write one such as 'button.buy' or '#nav a'.")
    if limited and len(source) > limits.MAX_SELECTOR_LENGTH:
        raise _invalid(
            f"A selector has at most {limits.MAX_SELECTOR_LENGTH} characters; "
            f"this one has {len(source)}.",
            code="SELECTOR_TOO_LONG",
        )
    selector = _compile(source)
    if not limited:
        return selector
    if len(selector._alternatives) > limits.MAX_SELECTOR_ALTERNATIVES:
        raise _invalid(
            f"A selector lists at most {limits.MAX_SELECTOR_ALTERNATIVES} alternatives "
            f"(separated by commas); this one has {len(selector._alternatives)}.",
            code="TOO_MANY_SELECTORS",
        )
    if selector.depth > limits.MAX_SELECTOR_COMBINATORS:
        raise _invalid(
            f"A selector chains at most {limits.MAX_SELECTOR_COMBINATORS} combinators "
            f"(spaces and '>') in one alternative; one here has {selector.depth}.",
            code="SELECTOR_TOO_DEEP",
        )
    return selector


@lru_cache(maxsize=1024)
def _compile(source: str) -> Selector:
    try:
        parsed = css.parse(source)
        compiler = _Compiler()
        alternatives = tuple(compiler.alternative(selector) for selector in parsed)
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
    return Selector(source, alternatives, compiler.depth)


def _invalid(message: str, code: str = "INVALID_SELECTOR") -> InvalidInput:
    return InvalidInput(message, field="selector", code=code)


# Every compiled part by its structure (children by identity, as they are shared too), for
# as long as some selector holds it: equal parts of all selectors are one object.
_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()
_SHARING = threading.Lock()  # compilation runs on the event loop and in worker threads


class _Compiler:
    """Builds the parts of one selector list, sharing equal parts (see `_Compound`)."""

    def __init__(self) -> None:
        self._parts: list[Any] = []  # keeps new parts alive until the selector holds them
        self.depth = 0  # the most combinators in one complex selector

    def _share(self, key: tuple[Any, ...], part: T) -> T:
        with _SHARING:
            shared: T = _SHARED.setdefault(key, part)
        self._parts.append(shared)
        return shared

    def alternative(self, selector: css.Selector) -> _Complex:
        if selector.pseudo_element is not None:
            raise _Unsupported(f"the pseudo-element '::{selector.pseudo_element}'")
        return self.complex(selector.parsed_tree)

    def complex(self, tree: css.Tree) -> _Complex:
        compounds: list[_Compound] = []
        combinators: list[str] = []
        while isinstance(tree, css.CombinedSelector):
            if tree.combinator not in (_CHILD, _DESCENDANT):
                raise _Unsupported(f"the sibling combinator '{tree.combinator}'")
            compounds.append(self.compound(tree.subselector))
            combinators.append(tree.combinator)
            tree = tree.selector
        self.depth = max(self.depth, len(combinators))
        compounds.append(self.compound(tree))
        key = ("complex", *map(id, compounds), *combinators)
        return self._share(key, _Complex(tuple(compounds), tuple(combinators)))

    def compound(self, tree: css.Tree) -> _Compound:
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
                attributes.append(self.attribute(tree))
            elif isinstance(tree, css.Negation):
                negations.append(self.complex(tree.subselector))
            else:
                raise _Unsupported(_describe(tree))
            tree = tree.selector
        if tree.namespace is not None:
            raise _Unsupported(f"the namespace '{tree.namespace}|'")
        tag = tree.element.lower() if tree.element else None
        key = (
            "compound",
            tag,
            tuple(sorted(set(ids))),
            tuple(sorted(classes)),
            tuple(sorted(set(map(id, attributes)))),
            tuple(sorted(set(map(id, negations)))),
        )
        compound = _Compound(
            tag, tuple(ids), frozenset(classes), tuple(attributes), tuple(negations)
        )
        return self._share(key, compound)

    def attribute(self, attrib: css.Attrib) -> _AttributeTest:
        if attrib.namespace is not None:
            raise _Unsupported(f"the namespace '{attrib.namespace}|'")
        compare = _OPERATORS.get(attrib.operator)
        if compare is None:
            raise _Unsupported(f"the non-standard attribute operator '{attrib.operator}'")
        ignore_case = attrib.flag == "i"
        value = "" if attrib.value is None else str(attrib.value.value)
        name = attrib.attrib.lower()
        wanted = value.lower() if ignore_case else value
        key = ("attribute", name, attrib.operator, wanted, ignore_case)
        return self._share(key, _AttributeTest(name, compare, wanted, ignore_case))


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
