"""Azure role-assignment conditions (Azure ABAC) as a language: parse once, then ask.

* :func:`parse_condition` turns condition text into a :class:`Condition`, or raises
  :class:`ConditionSyntaxError` with the line and column of the first problem.
* ``Condition.attributes()`` / ``.actions()`` say what it reads and targets;
  ``Condition.evaluate(RequestContext(...))`` answers whether the assignment grants that
  one data action for that request, as Azure evaluates it.
* :func:`validate_condition` refuses, before any resource, what ARM refuses (a condition
  on a role that cannot carry one, ``conditionVersion`` other than 2.0) and what could
  never be true (an attribute the targeted action does not have).

Why lark: the language (Microsoft's "Azure role assignment condition format and
syntax") has nesting, precedence rules, list literals and many operator names. A
hand-written tokenizer would be the kind of code where a missed case silently accepts
or misreads a condition. lark is a maintained, pure-Python parser generator with no
dependencies; its LALR mode is linear-time and its errors carry line, column and the
expected tokens, which is exactly what a config error needs to point at the spot. The
grammar lives in ``condition.lark`` where a reader can check it against the page.
"""

from components.conditions.model import Condition, RequestContext
from components.conditions.syntax import ConditionSyntaxError, parse_condition
from components.conditions.validate import (
    CONDITION_VERSION,
    INVALID_CONDITION_CODE,
    INVALID_CONDITION_MESSAGE,
    arm_condition_refusal,
    condition_capable,
    validate_condition,
)

__all__ = [
    "CONDITION_VERSION",
    "INVALID_CONDITION_CODE",
    "INVALID_CONDITION_MESSAGE",
    "Condition",
    "ConditionSyntaxError",
    "RequestContext",
    "arm_condition_refusal",
    "condition_capable",
    "parse_condition",
    "validate_condition",
]
