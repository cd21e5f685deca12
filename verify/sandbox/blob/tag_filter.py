"""Find Blobs by Tags: the where-expression, parsed (``tag_filter.lark``) and evaluated.

Microsoft's "Find Blobs by Tags" page defines the expression: comparisons of a tag with a
single-quoted value, joined by ``AND``; ``=``, ``>``, ``>=``, ``<``, ``<=`` compare
strings by ordinal; ``@container = 'name'`` limits the search to one container; at most
10 distinct tags; several conditions on one tag only when they form a range; tag names
1-128 and values 0-256 characters of letters, digits, space and ``+ - . / : = _``. A blob
matches when every comparison holds; the response lists, per blob, only the tags the
expression names. Anything else is 400 ``InvalidQueryParameterValue`` naming the
``where`` parameter, with "Error parsing query at or near character position N: ..." as
Azurite (Microsoft's emulator) words it.
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
    """A where-expression Azure refuses; ``position`` counts characters from 0."""

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
            ">": actual > self.value,
            ">=": actual >= self.value,
            "<": actual < self.value,
            "<=": actual <= self.value,
        }[self.operator]


@dataclass(frozen=True)
class TagFilter:
    """A parsed where-expression: every comparison must hold."""

    text: str
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
        return all(
            c.holds(container if c.key == CONTAINER else tags.get(c.key)) for c in self.comparisons
        )

    def shown_tags(self, tags: dict[str, str]) -> dict[str, str]:
        """The blob's tags the expression names: what the response lists for it."""
        return {name: tags[name] for name in self.tag_names if name in tags}


@cache
def _parser() -> Lark:
    grammar = resources.files("verify.sandbox.blob").joinpath("tag_filter.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _unquote(token: Token) -> str:
    text = str(token)
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def parse(text: str) -> TagFilter:
    """The expression, or :class:`TagFilterError` at the position Azure would name."""
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
    comparisons = tuple(_comparisons(tree))
    _check(comparisons)
    return TagFilter(text, tuple(c for c, _ in comparisons))


def _comparisons(tree: Tree[Token]) -> list[tuple[Comparison, int]]:
    out: list[tuple[Comparison, int]] = []
    for node in tree.find_data("comparison"):
        key_tree, operator, value = node.children
        assert isinstance(key_tree, Tree) and isinstance(operator, Token)
        assert isinstance(value, Token)
        key_token = key_tree.children[0]
        assert isinstance(key_token, Token)
        key = _unquote(key_token) if key_token.type == "QUOTED_KEY" else str(key_token)
        out.append((Comparison(key, str(operator), _unquote(value)), key_token.start_pos or 0))
    return out


def _check(comparisons: tuple[tuple[Comparison, int], ...]) -> None:
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
            for text in (key, value):
                if not _ALLOWED.match(text):
                    bad = next(ch for ch in text if not _ALLOWED.match(ch))
                    raise TagFilterError(position, f"'{bad}' not permitted in tag name or value")
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
