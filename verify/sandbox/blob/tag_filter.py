"""Blob index tag expressions, parsed (``tag_filter.lark``) and evaluated: Find Blobs by
Tags' ``where`` and the ``x-ms-if-tags`` conditional header.

Microsoft's "Find Blobs by Tags" page defines ``where``: comparisons of a tag with a
single-quoted value, joined by ``AND``; ``=``, ``>``, ``>=``, ``<``, ``<=`` compare
strings by ordinal; ``@container = 'name'`` limits the search to one container; at most
10 distinct tags; several conditions on one tag only when they form a range; tag names
1-128 and values 0-256 characters of letters, digits, space and ``+ - . / : = _``. A blob
matches when every comparison holds; the response lists, per blob, only the tags the
expression names. A refused ``where`` is 400 ``InvalidQueryParameterValue`` naming the
parameter, with "Error parsing query at or near character position N: ..." as Azurite
(Microsoft's emulator) words it.

``x-ms-if-tags`` ("Specifying conditional headers for Blob service operations") takes the
same comparisons plus ``<>`` and ``OR`` (``AND`` binds tighter), no ``@`` parameters and
none of the count, range or length limits; a refused one is 400 ``InvalidHeaderValue``.
A comparison on a tag the blob does not have is false, whatever the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

CONTAINER = "@container"
MAX_TAGS = 10
_ALLOWED = re.compile(r"^[A-Za-z0-9 +\-./:=_]*$")


class TagFilterError(ValueError):
    """An expression Azure refuses; ``position`` counts characters from 0."""

    def __init__(self, position: int, problem: str) -> None:
        self.position = position
        self.problem = problem
        super().__init__(f"Error parsing query at or near character position {position}: {problem}")


@dataclass(frozen=True)
class Comparison:
    key: str  # a tag name, or "@container"
    operator: str
    value: str

    def holds(self, actual: str | None) -> bool:
        if actual is None:
            return False
        return {
            "=": actual == self.value,
            "<>": actual != self.value,
            ">": actual > self.value,
            ">=": actual >= self.value,
            "<": actual < self.value,
            "<=": actual <= self.value,
        }[self.operator]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Expression, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Expression, ...]


Expression = Comparison | AllOf | AnyOf


@dataclass(frozen=True)
class TagFilter:
    """A parsed expression and the comparisons in it, in the order written."""

    text: str
    expression: Expression
    comparisons: tuple[Comparison, ...]

    @property
    def tag_names(self) -> tuple[str, ...]:
        """The tags the expression names (in order, once each), ``@container`` excluded."""
        seen: dict[str, None] = {}
        for c in self.comparisons:
            if c.key != CONTAINER:
                seen.setdefault(c.key, None)
        return tuple(seen)

    def matches(self, container: str, tags: dict[str, str]) -> bool:
        def holds(node: Expression) -> bool:
            if isinstance(node, Comparison):
                return node.holds(container if node.key == CONTAINER else tags.get(node.key))
            if isinstance(node, AllOf):
                return all(holds(part) for part in node.parts)
            return any(holds(part) for part in node.parts)

        return holds(self.expression)

    def shown_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """The blob's tags the expression names: what Find Blobs by Tags lists for it."""
        return {name: tags[name] for name in self.tag_names if name in tags}


@cache
def _parser() -> Lark:
    grammar = resources.files("verify.sandbox.blob").joinpath("tag_filter.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _unquote(token: Token) -> str:
    text = str(token)
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def parse_where(text: str) -> TagFilter:
    """Find Blobs by Tags' ``where``, or :class:`TagFilterError` where Azure refuses it."""
    return _parse(text, header=False)


def parse_if_tags(text: str) -> TagFilter:
    """An ``x-ms-if-tags`` header, or :class:`TagFilterError`."""
    return _parse(text, header=True)


def _parse(text: str, *, header: bool) -> TagFilter:
    try:
        tree = _parser().parse(text)
    except UnexpectedEOF:
        raise TagFilterError(len(text), "unexpected end of query") from None
    except UnexpectedCharacters as exc:
        position = exc.pos_in_stream or 0
        raise TagFilterError(position, f"unexpected {text[position]!r}") from None
    except UnexpectedToken as exc:
        position = exc.token.start_pos if exc.token.start_pos is not None else len(text)
        shown = "end of query" if exc.token.type == "$END" else repr(str(exc.token))
        raise TagFilterError(position or 0, f"unexpected {shown}") from None
    except UnexpectedInput as exc:  # any other lark input error
        raise TagFilterError(getattr(exc, "pos_in_stream", 0) or 0, str(exc)) from None
    positioned: list[tuple[Comparison, int]] = []
    expression = _build(tree, positioned, header=header)
    if header:
        _check_header(positioned)
    else:
        _check_where(positioned)
    return TagFilter(text, expression, tuple(c for c, _ in positioned))


def _build(
    node: Tree[Token] | Token, out: list[tuple[Comparison, int]], *, header: bool
) -> Expression:
    """The expression of a parse tree, collecting each comparison with its position."""
    assert isinstance(node, Tree)
    if node.data == "comparison":
        key_tree, operator, value = node.children
        assert isinstance(key_tree, Tree) and isinstance(operator, Token)
        assert isinstance(value, Token)
        key_token = key_tree.children[0]
        assert isinstance(key_token, Token)
        if operator == "<>" and not header:
            raise TagFilterError(operator.start_pos or 0, "unexpected <>")
        key = _unquote(key_token) if key_token.type == "QUOTED_KEY" else str(key_token)
        comparison = Comparison(key, str(operator), _unquote(value))
        out.append((comparison, key_token.start_pos or 0))
        return comparison
    parts = []
    for child in node.children:
        if isinstance(child, Token):  # an OR keyword
            if not header:
                raise TagFilterError(child.start_pos or 0, "unexpected or")
            continue
        parts.append(_build(child, out, header=header))
    return AnyOf(tuple(parts)) if node.data == "disjunction" else AllOf(tuple(parts))


def _check_characters(comparison: Comparison, position: int) -> None:
    for text in (comparison.key, comparison.value):
        if not _ALLOWED.match(text):
            bad = next(ch for ch in text if not _ALLOWED.match(ch))
            raise TagFilterError(position, f"'{bad}' not permitted in tag name or value")


def _check_header(comparisons: list[tuple[Comparison, int]]) -> None:
    for comparison, position in comparisons:
        if comparison.key.startswith("@"):
            raise TagFilterError(position, f"unsupported parameter '{comparison.key}'")
        _check_characters(comparison, position)


def _check_where(comparisons: list[tuple[Comparison, int]]) -> None:
    seen: dict[str, list[str]] = {}
    for comparison, position in comparisons:
        key, operator, value = comparison.key, comparison.operator, comparison.value
        if key.startswith("@"):
            if key != CONTAINER:
                raise TagFilterError(position, f"unsupported parameter '{key}'")
            if operator != "=":
                raise TagFilterError(position, "@container can only be compared with '='")
        else:
            if not 1 <= len(key) <= 128:
                raise TagFilterError(position, "tag must be between 1 and 128 characters in length")
            if len(value) > 256:
                raise TagFilterError(
                    position, "tag value must be between 0 and 256 characters in length"
                )
            _check_characters(comparison, position)
        previous = seen.setdefault(key, [])
        kinds = {_kind(op) for op in previous}
        if previous and ("=" in kinds or _kind(operator) in kinds or operator == "="):
            raise TagFilterError(
                position,
                "can't have multiple conditions for a single tag unless they define a range",
            )
        previous.append(operator)
        if len([k for k in seen if k != CONTAINER]) > MAX_TAGS:
            raise TagFilterError(position, "there can be at most 10 unique tags in a query")


def _kind(operator: str) -> str:
    """'=' alone, or which side of a range ('>' / '<') an operator bounds."""
    return operator[0] if operator != "=" else "="
