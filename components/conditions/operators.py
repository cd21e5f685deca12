"""The comparison operators of Azure's condition language: one table, one predicate each.

Microsoft's "Azure role assignment condition format and syntax" groups them into
families (string, numeric, Boolean, DateTime, GUID); each family fixes what a literal
must look like and how two values compare. Keeping every operator in one table means
the parser (which refuses an unknown name, or a literal of the wrong kind, with its line
and column), the validator (which checks the attribute's type) and the evaluator all
read the same facts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Family = Literal["string", "numeric", "bool", "datetime", "guid"]
Quantifier = Literal[
    "ForAnyOfAnyValues", "ForAllOfAnyValues", "ForAnyOfAllValues", "ForAllOfAllValues"
]

QUANTIFIERS: tuple[Quantifier, ...] = (
    "ForAnyOfAnyValues",
    "ForAllOfAnyValues",
    "ForAnyOfAllValues",
    "ForAllOfAllValues",
)
#: The families the syntax page lists under "Cross product comparison operators".
CROSS_PRODUCT_FAMILIES: frozenset[Family] = frozenset({"string", "numeric", "guid"})

Predicate = Callable[[object, object], bool]

# ``yyyy-mm-ddThh:mm:ss.fffffffZ``: the page's "full-precision" format, 1 to 7 digits.
_DATETIME = re.compile(r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(?P<fraction>\d{1,7})Z$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ValueKindError(ValueError):
    """A literal that does not fit its operator's family (the parser words the message)."""


def datetime_ticks(value: object) -> int:
    """A DateTime as 100-ns ticks since 1970, so all 7 digits of the format compare.

    Accepts the condition format (string) or an aware ``datetime`` (an attribute value).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueKindError("a naive datetime has no time zone; give it tzinfo=UTC")
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    if not isinstance(value, str):
        raise ValueKindError(f"{value!r} is not a DateTime")
    match = _DATETIME.match(value)
    if match is None:
        raise ValueKindError(
            f"{value!r} is not a DateTime in the format yyyy-mm-ddThh:mm:ss.fffffffZ"
        )
    try:
        base = datetime.strptime(match["base"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueKindError(f"{value!r} is not a valid date and time ({exc})") from None
    return datetime_ticks(base) + int(match["fraction"].ljust(7, "0"))


def guid_value(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and re.fullmatch(
        r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value
    ):
        return uuid.UUID(value)
    raise ValueKindError(f"{value!r} is not a GUID (00000000-0000-0000-0000-000000000000)")


def int_value(value: object) -> int:
    """Only integers are supported (the syntax page, "Numeric comparison operators")."""
    if isinstance(value, bool):
        raise ValueKindError(f"{value!r} is a Boolean, not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise ValueKindError(f"{value!r} is not an integer")


def bool_value(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueKindError(f"{value!r} is not a Boolean (true or false)")


def str_value(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueKindError(f"{value!r} is not a string")


def like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` exactly one; ``\\*`` and ``\\?`` are literal."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _string(compare: Callable[[str, str], bool], ignore_case: bool) -> Predicate:
    def predicate(left: object, right: object) -> bool:
        a, b = str_value(left), str_value(right)
        if ignore_case:
            a, b = a.casefold(), b.casefold()
        return compare(a, b)

    return predicate


def _like(ignore_case: bool) -> Predicate:
    def predicate(left: object, right: object) -> bool:
        return like_regex(str_value(right), ignore_case).fullmatch(str_value(left)) is not None

    return predicate


def _negate(predicate: Predicate) -> Predicate:
    return lambda left, right: not predicate(left, right)


def _converted(
    convert: Callable[[object], object], compare: Callable[[object, object], bool]
) -> Predicate:
    return lambda left, right: compare(convert(left), convert(right))


@dataclass(frozen=True)
class Operator:
    """One base operator (the part after an optional ``ForXOfYValues:`` prefix)."""

    name: str
    family: Family
    predicate: Predicate

    def check_literal(self, value: object) -> None:
        """Raise :class:`ValueKindError` when a literal cannot be compared by this family."""
        LITERAL_CHECKS[self.family](value)


def _string_ops() -> list[Operator]:
    ops: list[Operator] = []
    bases: dict[str, Callable[[bool], Predicate]] = {
        "Equals": lambda ic: _string(lambda a, b: a == b, ic),
        "StartsWith": lambda ic: _string(lambda a, b: a.startswith(b), ic),
        "Like": _like,
    }
    for base, make in bases.items():
        for ignore_case in (False, True):
            suffix = "IgnoreCase" if ignore_case else ""
            positive = make(ignore_case)
            ops.append(Operator(f"String{base}{suffix}", "string", positive))
            ops.append(Operator(f"StringNot{base}{suffix}", "string", _negate(positive)))
    return ops


def _ordered(family: Family, prefix: str, convert: Callable[[object], object]) -> list[Operator]:
    compare: dict[str, Callable[[object, object], bool]] = {
        "Equals": lambda a, b: a == b,
        "NotEquals": lambda a, b: a != b,
        "GreaterThan": lambda a, b: a > b,  # type: ignore[operator]
        "GreaterThanEquals": lambda a, b: a >= b,  # type: ignore[operator]
        "LessThan": lambda a, b: a < b,  # type: ignore[operator]
        "LessThanEquals": lambda a, b: a <= b,  # type: ignore[operator]
    }
    return [Operator(f"{prefix}{k}", family, _converted(convert, c)) for k, c in compare.items()]


def _equality(family: Family, prefix: str, convert: Callable[[object], object]) -> list[Operator]:
    equals = _converted(convert, lambda a, b: a == b)
    return [
        Operator(f"{prefix}Equals", family, equals),
        Operator(f"{prefix}NotEquals", family, _negate(equals)),
    ]


LITERAL_CHECKS: dict[Family, Callable[[object], object]] = {
    "string": str_value,
    "numeric": int_value,
    "bool": bool_value,
    "datetime": datetime_ticks,
    "guid": guid_value,
}

OPERATORS: dict[str, Operator] = {
    op.name.lower(): op
    for op in (
        *_string_ops(),
        *_ordered("numeric", "Numeric", int_value),
        *_ordered("datetime", "DateTime", datetime_ticks),
        *_equality("bool", "Bool", bool_value),
        *_equality("guid", "Guid", guid_value),
    )
}


def lookup(name: str) -> Operator | None:
    """The operator named ``name``; names compare case-insensitively, as ARM accepts them
    (azure-cli's own example for ``--condition`` writes ``stringEquals``)."""
    return OPERATORS.get(name.lower())


def quantifier(name: str) -> Quantifier | None:
    for q in QUANTIFIERS:
        if q.lower() == name.lower():
            return q
    return None
