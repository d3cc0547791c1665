"""The built-in functions (spec section 3.5), dispatched by name and arity at compile time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .errors import CESQLCastError, CESQLFunctionEvaluationError, CESQLMissingFunctionError
from .nodes import Event, Node
from .values import Cast, Value, ValueType, int32, to_bool, to_int, to_str


@dataclass(frozen=True, slots=True)
class Function:
    parameters: tuple[Cast, ...]
    result: ValueType
    apply: Callable[..., Value]
    # The cast for each argument past the fixed ones, if the function is variadic.
    variadic: Cast | None = None

    def casts(self, arity: int) -> tuple[Cast, ...] | None:
        """The casts of the arguments of a call with `arity` arguments, or None if it cannot be."""
        extra = arity - len(self.parameters)
        if extra == 0:
            return self.parameters
        if extra > 0 and self.variadic is not None:
            return self.parameters + (self.variadic,) * extra
        return None


def _any(value: Value) -> Value:
    return value


def _castable(cast: Cast) -> Callable[[Value], bool]:
    def castable(value: Value) -> bool:
        try:
            cast(value)
        except CESQLCastError:
            return False
        return True

    return castable


# Unicode's White_Space property. str.strip() would also drop U+001C to U+001F, which are
# control characters that the spec says TRIM keeps.
_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _trim(text: str) -> str:
    return text.strip(_WHITESPACE)


def _left(text: str, length: int) -> str:
    if length < 0:
        raise CESQLFunctionEvaluationError(f"LEFT needs a length of 0 or more, not {length}")
    return text[:length]


def _right(text: str, length: int) -> str:
    if length < 0:
        raise CESQLFunctionEvaluationError(f"RIGHT needs a length of 0 or more, not {length}")
    return text[max(len(text) - length, 0) :]


def _substring(text: str, position: int, length: int | None = None) -> str:
    if not -len(text) <= position <= len(text):
        raise CESQLFunctionEvaluationError(
            f"SUBSTRING position {position} is outside a string of length {len(text)}"
        )
    if length is not None and length < 0:
        raise CESQLFunctionEvaluationError(f"SUBSTRING needs a length of 0 or more, not {length}")
    if position == 0:
        return ""
    # Positions count from 1, or from the end when negative.
    start = position - 1 if position > 0 else len(text) + position
    return text[start:] if length is None else text[start : start + length]


_BUILTINS: Mapping[str, Sequence[Function]] = {
    "LENGTH": [Function((to_str,), int, len)],
    "CONCAT": [Function((), str, lambda *parts: "".join(parts), variadic=to_str)],
    "CONCAT_WS": [
        Function((to_str,), str, lambda delimiter, *parts: delimiter.join(parts), variadic=to_str)
    ],
    "LOWER": [Function((to_str,), str, str.lower)],
    "UPPER": [Function((to_str,), str, str.upper)],
    "TRIM": [Function((to_str,), str, _trim)],
    "LEFT": [Function((to_str, to_int), str, _left)],
    "RIGHT": [Function((to_str, to_int), str, _right)],
    "SUBSTRING": [
        Function((to_str, to_int), str, _substring),
        Function((to_str, to_int, to_int), str, _substring),
    ],
    "ABS": [Function((to_int,), int, lambda number: int32(abs(number)))],
    "INT": [Function((_any,), int, to_int)],
    "BOOL": [Function((_any,), bool, to_bool)],
    "STRING": [Function((_any,), str, to_str)],
    "IS_INT": [Function((_any,), bool, _castable(to_int))],
    "IS_BOOL": [Function((_any,), bool, _castable(to_bool))],
}


def call(name: str, arguments: Sequence[Node]) -> Node:
    """A call of the built-in `name`, which is case-insensitive."""
    name = name.upper()
    for function in _BUILTINS.get(name, ()):
        casts = function.casts(len(arguments))
        if casts is not None:
            return _invocation(function, casts, arguments)

    message = f"there is no function {name} taking {len(arguments)} argument(s)"

    def missing(_event: Event) -> Value:
        raise CESQLMissingFunctionError(message)

    # An undispatchable call yields false (spec 3.5); Knative also only fails it per event.
    return Node(missing, bool)


def _invocation(function: Function, casts: Sequence[Cast], arguments: Sequence[Node]) -> Node:
    apply = function.apply
    pairs = [(cast, argument.evaluate) for cast, argument in zip(casts, arguments, strict=True)]
    return Node(
        lambda event: apply(*[cast(evaluate(event)) for cast, evaluate in pairs]), function.result
    )
