"""Text -> :class:`Condition`, with every error at its line and column.

The grammar is ``condition.lark`` (LALR: linear time, and its errors carry the position
and the tokens it expected). This module turns the parse tree into the expression model
and checks what a context-free grammar cannot: operator names, literal kinds per
operator family, cross-product prefixes, single values where no prefix is given.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from components.conditions import operators
from components.conditions.model import (
    ActionMatches,
    And,
    Attribute,
    Comparison,
    Condition,
    Exists,
    LiteralValue,
    Node,
    Not,
    Operand,
    Or,
    Position,
    Source,
    SubOperationMatches,
)


class ConditionSyntaxError(ValueError):
    """A condition that is not valid text; ``line`` and ``column`` count from 1."""

    def __init__(self, line: int, column: int, message: str) -> None:
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"line {line}, column {column}: {message}")


@cache
def _parser() -> Lark:
    grammar = resources.files("components.conditions").joinpath("condition.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _pos(token: Token) -> Position:
    return Position(token.line or 0, token.column or 0)


def _unquote(token: Token) -> str:
    return str(token)[1:-1]


_TOKEN_NAMES = {
    "_AND": "AND",
    "_OR": "OR",
    "_NOT": "NOT",
    "RPAR": "')'",
    "LPAR": "'('",
    "RBRACE": "'}'",
    "LBRACE": "'{'",
    "COMMA": "','",
    "OPERATOR": "an operator",
    "ATTRIBUTE": "an attribute",
    "STRING": "a string",
    "GUID": "a GUID",
    "NUMBER": "a number",
    "BOOL": "true or false",
    "$END": "the end",
}


def _expected(names: set[str]) -> str:
    literal = {
        t.name: repr(t.pattern.value) for t in _parser().terminals if t.pattern.type == "str"
    }
    words = sorted({_TOKEN_NAMES.get(n) or literal.get(n, n) for n in names})
    return ", ".join(words)


def _end(text: str) -> tuple[int, int]:
    """Line and column just past the last character."""
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def _from_lark(text: str, exc: UnexpectedInput) -> ConditionSyntaxError:
    line, column = exc.line or 1, exc.column or 1
    if isinstance(exc, UnexpectedEOF):
        return ConditionSyntaxError(
            *_end(text), f"the condition ends early; expected {_expected(set(exc.expected))}"
        )
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = set(exc.expected)
        if token.type == "$END":
            return ConditionSyntaxError(
                *_end(text), f"the condition ends early; expected {_expected(expected)}"
            )
        if token.type in ("_AND", "_OR") and expected & {"_AND", "_OR"}:
            return ConditionSyntaxError(
                line,
                column,
                f"{token!s} follows an {'OR' if token.type == '_AND' else 'AND'} at one level; "
                "AND and OR cannot be mixed without parentheses: write (a AND b) OR c "
                "or a AND (b OR c)",
            )
        return ConditionSyntaxError(
            line, column, f"unexpected {str(token)!r}; expected {_expected(expected)}"
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        hint = ""
        if char == '"':
            hint = " (strings are written in single quotes)"
        return ConditionSyntaxError(line, column, f"unexpected character {char!r}{hint}")
    return ConditionSyntaxError(line, column, str(exc))


class _Build(Transformer[Token, Any]):
    """Parse tree -> model, checking operators and literal kinds."""

    def and_chain(self, items: list[Node]) -> Node:
        return And(tuple(items))

    def or_chain(self, items: list[Node]) -> Node:
        return Or(tuple(items))

    def negation(self, items: list[Node]) -> Node:
        return Not(items[0])

    def action_matches(self, items: list[Token]) -> Node:
        return ActionMatches(_unquote(items[0]), _pos(items[0]))

    def suboperation_matches(self, items: list[Token]) -> Node:
        return SubOperationMatches(_unquote(items[0]), _pos(items[0]))

    def exists(self, items: list[Token]) -> Node:
        return Exists(self.attribute(items))

    def attribute(self, items: list[Token]) -> Attribute:
        token = items[0]
        raw = str(token)[1:-1]
        source, _, name = raw.partition("[")
        name = name.strip()
        if not name:
            raise ConditionSyntaxError(
                token.line or 0, token.column or 0, "an attribute needs a name"
            )
        src: Source = source  # type: ignore[assignment]  # the grammar allows only the four
        return Attribute(src, name, _pos(token))

    def string(self, items: list[Token]) -> LiteralValue:
        return LiteralValue((_unquote(items[0]),), False, _pos(items[0]))

    def guid(self, items: list[Token]) -> LiteralValue:
        return LiteralValue((str(items[0]),), False, _pos(items[0]))

    def number(self, items: list[Token]) -> LiteralValue:
        return LiteralValue((int(items[0]),), False, _pos(items[0]))

    def boolean(self, items: list[Token]) -> LiteralValue:
        return LiteralValue((str(items[0]).lower() == "true",), False, _pos(items[0]))

    def value_list(self, items: list[LiteralValue]) -> LiteralValue:
        return LiteralValue(
            tuple(v for item in items for v in item.values), True, items[0].position
        )

    def comparison(self, items: list[Any]) -> Node:
        left, token, right = items
        return _comparison(left, token, right)


def _comparison(left: Operand, token: Token, right: Operand) -> Comparison:
    line, column = token.line or 0, token.column or 0
    prefix, _, base = str(token).rpartition(":")
    quantifier = None
    if prefix:
        quantifier = operators.quantifier(prefix)
        if quantifier is None:
            close = difflib.get_close_matches(prefix, operators.QUANTIFIERS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConditionSyntaxError(
                line,
                column,
                f"{prefix!r} is not a cross-product prefix{hint} "
                f"(use one of {', '.join(operators.QUANTIFIERS)})",
            )
    operator = operators.lookup(base)
    if operator is None:
        names = [op.name for op in operators.OPERATORS.values()]
        close = difflib.get_close_matches(base, names, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConditionSyntaxError(line, column, f"{base!r} is not a condition operator{hint}")
    if quantifier is not None and operator.family not in operators.CROSS_PRODUCT_FAMILIES:
        raise ConditionSyntaxError(
            line,
            column,
            f"{quantifier}:{operator.name} is not defined: cross-product prefixes apply to "
            "string, numeric and GUID operators only",
        )
    for operand in (left, right):
        if not isinstance(operand, LiteralValue):
            continue
        if operand.is_list and quantifier is None:
            raise ConditionSyntaxError(
                operand.position.line,
                operand.position.column,
                f"{operator.name} compares single values; to compare with a list use "
                f"ForAnyOfAnyValues:{operator.name} (or another cross-product prefix)",
            )
        for value in operand.values:
            try:
                operator.check_literal(value)
            except operators.ValueKindError as exc:
                raise ConditionSyntaxError(
                    operand.position.line,
                    operand.position.column,
                    f"{operator.name} is a {operator.family} operator and {exc}",
                ) from None
    # Two literals are allowed: the syntax page's own examples compare two lists.
    return Comparison(left, operator, quantifier, right, Position(line, column))


def parse_condition(text: str) -> Condition:
    """Parse ``text`` (a role-assignment condition, version 2.0) once.

    Raises :class:`ConditionSyntaxError` with the line and column of the first problem.
    """
    if not text or not text.strip():
        raise ConditionSyntaxError(1, 1, "the condition is empty")
    try:
        tree: Tree[Token] = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _from_lark(text, exc) from None
    try:
        root = _Build().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ConditionSyntaxError):
            raise exc.orig_exc from None
        raise
    if not isinstance(root, Node):
        position = getattr(root, "position", Position(1, 1))
        raise ConditionSyntaxError(
            position.line, position.column, "a condition must be an expression, not a bare value"
        )
    return Condition(text, root)
