"""CloudEvents SQL v1 (CESQL), as the local broker's Trigger filter dialect `cesql`.

    expression = compile("type LIKE 'shop.order.%' AND EXISTS orderid")
    expression.matches({"type": "shop.order.placed", "orderid": "42", ...})  # True

An event is a mapping of its context attributes and extensions by name. Filters follow Knative
(knative/eventing `cesql_filter.go` over cloudevents sdk-go `sql/v2`): an event passes only if
the expression evaluates to the boolean true without error, and reading an attribute the event
lacks is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import (
    CESQLCastError,
    CESQLError,
    CESQLEvaluationError,
    CESQLFunctionEvaluationError,
    CESQLMathError,
    CESQLMissingAttributeError,
    CESQLMissingFunctionError,
    CESQLParseError,
)
from .nodes import Node
from .parser import parse
from .values import Value

__all__ = [
    "CESQLCastError",
    "CESQLError",
    "CESQLEvaluationError",
    "CESQLFunctionEvaluationError",
    "CESQLMathError",
    "CESQLMissingAttributeError",
    "CESQLMissingFunctionError",
    "CESQLParseError",
    "Expression",
    "Result",
    "Value",
    "compile",
]


@dataclass(frozen=True, slots=True)
class Result:
    """What an expression yields: on error, the zero value of its type (spec 3.3 and 4.1)."""

    value: Value
    error: CESQLEvaluationError | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A compiled expression, to share and evaluate against any number of events."""

    source: str
    _root: Node = field(repr=False)

    def evaluate(self, event: Mapping[str, Any]) -> Result:
        try:
            return Result(self._root.evaluate(event))
        except CESQLEvaluationError as error:
            return Result(self._root.type(), error)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` passes a filter on this expression."""
        try:
            return self._root.evaluate(event) is True
        except CESQLEvaluationError:
            return False


# Filters are few and long-lived, so callers may compile right where they evaluate.
@lru_cache(maxsize=1024)
def compile(expression: str) -> Expression:
    """Parse `expression`; raises CESQLParseError, with its line and column, if it is not CESQL."""
    return Expression(expression, parse(expression))
