"""The compiled form of an expression: a tree of closures built once per expression.

Evaluating an event is then a chain of plain calls with no dispatch on node kinds. Errors are
raised as `CESQLEvaluationError`, which stops the evaluation at the first one: the spec's "fail
fast" mode, which it recommends for filters (spec 1.2 and 4.1).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from .errors import CESQLMathError, CESQLMissingAttributeError
from .values import CASTS, Value, ValueType, from_attribute, int32, to_bool, to_int, to_str

Event: TypeAlias = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Node:
    evaluate: Callable[[Event], Value]
    type: ValueType


def literal(value: Value) -> Node:
    return Node(lambda _event: value, type(value))


def attribute(name: str) -> Node:
    def evaluate(event: Event) -> Value:
        value = event.get(name)
        if value is None:
            raise CESQLMissingAttributeError(f"the event has no attribute {name!r}")
        return from_attribute(value)

    # An attribute's type is only known per event; the spec has Boolean stand in (section 3.2).
    return Node(evaluate, bool)


def exists(name: str) -> Node:
    return Node(lambda event: event.get(name) is not None, bool)


def not_(operand: Node) -> Node:
    evaluate = operand.evaluate
    return Node(lambda event: not to_bool(evaluate(event)), bool)


def negate(operand: Node) -> Node:
    evaluate = operand.evaluate
    return Node(lambda event: int32(-to_int(evaluate(event))), int)


def _divide(x: int, y: int) -> int:
    if y == 0:
        raise CESQLMathError("division by zero")
    quotient = abs(x) // abs(y)
    return quotient if (x < 0) == (y < 0) else -quotient


def _remainder(x: int, y: int) -> int:
    return x - y * _divide(x, y)


_ARITHMETIC: Mapping[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "%": _remainder,
}


def arithmetic(symbol: str, left: Node, right: Node) -> Node:
    apply = _ARITHMETIC[symbol]
    evaluate_left, evaluate_right = left.evaluate, right.evaluate

    def evaluate(event: Event) -> int:
        x, y = evaluate_left(event), evaluate_right(event)
        return int32(apply(to_int(x), to_int(y)))

    return Node(evaluate, int)


_ORDERINGS: Mapping[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def comparison(symbol: str, left: Node, right: Node) -> Node:
    evaluate_left, evaluate_right = left.evaluate, right.evaluate
    if symbol in _ORDERINGS:
        ordered = _ORDERINGS[symbol]

        def evaluate(event: Event) -> bool:
            x, y = evaluate_left(event), evaluate_right(event)
            return ordered(to_int(x), to_int(y))

        return Node(evaluate, bool)

    unequal = symbol != "="

    def equals(event: Event) -> bool:
        x, y = evaluate_left(event), evaluate_right(event)
        # `=` exists for each type; the right operand's type picks which one (spec 3.7).
        return (CASTS[type(y)](x) == y) is not unequal

    return Node(equals, bool)


def logic(keyword: str, left: Node, right: Node) -> Node:
    evaluate_left, evaluate_right = left.evaluate, right.evaluate

    # Python's `and` and `or` skip the right operand just as the spec requires (section 3.4.2).
    def and_(event: Event) -> bool:
        return to_bool(evaluate_left(event)) and to_bool(evaluate_right(event))

    def or_(event: Event) -> bool:
        return to_bool(evaluate_left(event)) or to_bool(evaluate_right(event))

    def xor(event: Event) -> bool:
        return to_bool(evaluate_left(event)) is not to_bool(evaluate_right(event))

    return Node({"and": and_, "or": or_, "xor": xor}[keyword], bool)


# A backslash makes `%` and `_` literal and is itself literal before anything else.
_LIKE_WILDCARDS = {"%": ".*", "_": ".", "\\%": "%", "\\_": "_"}


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\\[%_]|[%_])", pattern)
    regex = "".join(_LIKE_WILDCARDS.get(part) or re.escape(part) for part in parts)
    return re.compile(regex, re.DOTALL)


def like(operand: Node, pattern: str, negated: bool) -> Node:
    evaluate, match = operand.evaluate, _like_regex(pattern).fullmatch
    return Node(lambda event: (match(to_str(evaluate(event))) is not None) is not negated, bool)


def in_set(operand: Node, elements: Sequence[Node], negated: bool) -> Node:
    evaluate = operand.evaluate
    evaluate_elements = [element.evaluate for element in elements]

    def contains(event: Event) -> bool:
        x = evaluate(event)
        # The set's elements take the left operand's type (spec 3.7), one at a time so that
        # a match ends the evaluation like a chain of ORs would.
        cast = CASTS[type(x)]
        return any(cast(element(event)) == x for element in evaluate_elements) is not negated

    return Node(contains, bool)
