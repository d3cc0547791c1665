"""The error kinds of CloudEvents SQL v1 (spec section 3.3)."""

from __future__ import annotations


class CESQLError(Exception):
    """Any CloudEvents SQL error."""


class CESQLParseError(CESQLError):
    """The expression is not valid CESQL; Knative rejects such a Trigger at admission."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


class CESQLEvaluationError(CESQLError):
    """Evaluating an expression against an event failed, so a filter using it does not pass."""


class CESQLMathError(CESQLEvaluationError):
    """Division by zero, or an integer result outside the 32-bit range."""


class CESQLCastError(CESQLEvaluationError):
    """A value cannot be converted to the type an operator or function needs."""


class CESQLMissingAttributeError(CESQLEvaluationError):
    """The expression reads an attribute the event does not have."""


class CESQLMissingFunctionError(CESQLEvaluationError):
    """No function has this name and number of arguments."""


class CESQLFunctionEvaluationError(CESQLEvaluationError):
    """A function was called with arguments outside its domain."""
