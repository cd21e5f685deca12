"""A parsed condition: its expression tree, what it names, and how Azure evaluates it.

Evaluation follows Microsoft's "How a condition is evaluated": the condition is
evaluated for one data action (and suboperation) of one request; the assignment grants
that action only when the condition is true. ``!(ActionMatches{...})`` is what lets every
other action through.

Attributes an operation does not carry: the Blob Storage attributes page says a
condition whose attribute the operation does not supply "cannot evaluate this
condition, and will fail the authorization access check". So evaluation is three-valued:
a comparison on an attribute the request context does not hold is *unavailable*; AND/OR
give a definite answer when their other operands decide it (``!(ActionMatches{w}) OR
@Request[...]`` is true for every action but ``w``, in either operand order), NOT keeps
unavailable, and an unavailable result at the top denies. An attribute that is present
but has no value (a blob without that index tag) is an empty value set: every
comparison on it is false (none of the documented examples grants on an empty set).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from components.conditions.operators import Operator, Quantifier, ValueKindError
from components.roles import matches_operation

Source = Literal["Resource", "Request", "Principal", "Environment"]
AttributeValue = object  # str | int | bool | datetime | UUID | sequence | tag mapping | None

SUBOPERATION_ATTRIBUTE = "subOperation"
# Blob index tags: ``.../blobs/tags:<key><$key_case_sensitive$>`` (one key's value) and
# ``.../blobs/tags&$keys$&`` (the set of keys). A context gives the tags once, as a
# mapping under the base name ``.../blobs/tags``; both forms are read from it.
_TAG_VALUE = re.compile(r"^(?P<base>.+/tags):(?P<key>.+)<\$key_case_sensitive\$>$", re.IGNORECASE)
_TAG_KEYS = re.compile(r"^(?P<base>.+/tags)&\$keys\$&$", re.IGNORECASE)


class _UnavailableError(Exception):
    """The request does not carry an attribute the condition compares."""


@dataclass(frozen=True)
class RequestContext:
    """One data action of one request, with the attribute values Azure would have.

    Keys are attribute names as written inside ``@Source[...]`` (compared without regard
    to case, as the attribute pages say). Blob index tags are one mapping under
    ``Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags``.
    """

    action: str
    suboperation: str | None = None
    resource: Mapping[str, AttributeValue] = field(default_factory=dict)
    request: Mapping[str, AttributeValue] = field(default_factory=dict)
    principal: Mapping[str, AttributeValue] = field(default_factory=dict)
    environment: Mapping[str, AttributeValue] = field(default_factory=dict)

    def source(self, name: Source) -> Mapping[str, AttributeValue]:
        return {
            "Resource": self.resource,
            "Request": self.request,
            "Principal": self.principal,
            "Environment": self.environment,
        }[name]


def _lookup(values: Mapping[str, AttributeValue], name: str) -> tuple[bool, AttributeValue]:
    if name in values:
        return True, values[name]
    lowered = name.lower()
    for key, value in values.items():
        if key.lower() == lowered:
            return True, value
    return False, None


def _as_list(value: AttributeValue) -> list[object]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass(frozen=True)
class Attribute:
    source: Source
    name: str
    position: Position

    def values(self, ctx: RequestContext) -> list[object]:
        """The attribute's values in ``ctx``; raises when the request does not carry it."""
        if self.source == "Request" and self.name.lower() == SUBOPERATION_ATTRIBUTE.lower():
            return [] if ctx.suboperation is None else [ctx.suboperation]
        values = ctx.source(self.source)
        found, value = _lookup(values, self.name)
        if found:
            return _as_list(value)
        for pattern, keys in ((_TAG_VALUE, False), (_TAG_KEYS, True)):
            match = pattern.match(self.name)
            if match is None:
                continue
            found, tags = _lookup(values, match["base"])
            if not found:
                break
            if not isinstance(tags, Mapping):
                raise _UnavailableError(self.name)
            if keys:
                return list(tags)
            key = match["key"]  # the key is case-sensitive (Blob attributes page)
            return [tags[key]] if key in tags else []
        raise _UnavailableError(self.name)


@dataclass(frozen=True)
class LiteralValue:
    """A literal or a list literal ``{a, b}``; ``values`` in written order."""

    values: tuple[object, ...]
    is_list: bool
    position: Position


Operand = Attribute | LiteralValue


class Node:
    """An expression; ``evaluate`` returns True/False or raises :class:`_UnavailableError`."""

    def evaluate(self, ctx: RequestContext) -> bool:
        raise NotImplementedError

    def children(self) -> Sequence[Node]:
        return ()

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]

    def evaluate(self, ctx: RequestContext) -> bool:
        unavailable: _UnavailableError | None = None
        for item in self.items:
            try:
                if not item.evaluate(ctx):
                    return False
            except _UnavailableError as exc:
                unavailable = exc
        if unavailable is not None:
            raise unavailable
        return True

    def children(self) -> Sequence[Node]:
        return self.items


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]

    def evaluate(self, ctx: RequestContext) -> bool:
        unavailable: _UnavailableError | None = None
        for item in self.items:
            try:
                if item.evaluate(ctx):
                    return True
            except _UnavailableError as exc:
                unavailable = exc
        if unavailable is not None:
            raise unavailable
        return False

    def children(self) -> Sequence[Node]:
        return self.items


@dataclass(frozen=True)
class Not(Node):
    item: Node

    def evaluate(self, ctx: RequestContext) -> bool:
        return not self.item.evaluate(ctx)

    def children(self) -> Sequence[Node]:
        return (self.item,)


@dataclass(frozen=True)
class ActionMatches(Node):
    """``ActionMatches{'<pattern>'}``: ARM's action matching (``*`` wildcard, any case)."""

    pattern: str
    position: Position

    def evaluate(self, ctx: RequestContext) -> bool:
        return matches_operation(self.pattern, ctx.action)


@dataclass(frozen=True)
class SubOperationMatches(Node):
    pattern: str
    position: Position

    def evaluate(self, ctx: RequestContext) -> bool:
        return ctx.suboperation is not None and matches_operation(self.pattern, ctx.suboperation)


@dataclass(frozen=True)
class Exists(Node):
    """``Exists @Source[attr]``: the request carries a value for the attribute."""

    attribute: Attribute

    def evaluate(self, ctx: RequestContext) -> bool:
        try:
            return bool(self.attribute.values(ctx))
        except _UnavailableError:
            return False


@dataclass(frozen=True)
class Comparison(Node):
    """``<left> [ForXOfYValues:]<Operator> <right>``."""

    left: Operand
    operator: Operator
    quantifier: Quantifier | None
    right: Operand
    position: Position

    def _values(self, operand: Operand, ctx: RequestContext) -> list[object]:
        return operand.values(ctx) if isinstance(operand, Attribute) else list(operand.values)

    def evaluate(self, ctx: RequestContext) -> bool:
        left = self._values(self.left, ctx)
        right = self._values(self.right, ctx)
        if not left or not right:
            return False

        def holds(a: object, b: object) -> bool:
            try:
                return self.operator.predicate(a, b)
            except ValueKindError:
                return False  # a value of another type never compares equal/greater

        if self.quantifier is None:
            if len(left) != 1 or len(right) != 1:
                raise _UnavailableError(f"{self.operator.name} needs one value on each side")
            return holds(left[0], right[0])
        outer_all = self.quantifier.startswith("ForAllOf")
        inner_all = self.quantifier.endswith("AllValues")
        results = ((all if inner_all else any)(holds(a, b) for b in right) for a in left)
        return (all if outer_all else any)(results)

    def attributes(self) -> list[Attribute]:
        return [o for o in (self.left, self.right) if isinstance(o, Attribute)]


class Condition:
    """A condition parsed once; cheap to evaluate many times (one per matrix cell)."""

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self.root = root

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def evaluate(self, ctx: RequestContext) -> bool:
        """True when the assignment grants ``ctx.action`` for this request."""
        try:
            return self.root.evaluate(ctx)
        except _UnavailableError:
            return False

    def attributes(self) -> set[tuple[str, str]]:
        """Every ``(source, name)`` the condition reads, e.g. ``("Resource", "...:name")``."""
        out: set[tuple[str, str]] = set()
        for node in self.root.walk():
            if isinstance(node, Comparison):
                out.update((a.source, a.name) for a in node.attributes())
            elif isinstance(node, Exists):
                out.add((node.attribute.source, node.attribute.name))
        return out

    def actions(self) -> set[str]:
        """The action patterns named in ``ActionMatches``."""
        return {n.pattern for n in self.root.walk() if isinstance(n, ActionMatches)}

    def suboperations(self) -> set[str]:
        return {n.pattern for n in self.root.walk() if isinstance(n, SubOperationMatches)}
