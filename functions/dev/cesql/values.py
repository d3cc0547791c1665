"""CESQL's three value types and the casts between them (spec sections 3.1, 3.2 and 3.7).

Booleans, Integers and Strings are Python's `bool`, `int` and `str`; as `bool` is a subclass of
`int`, telling them apart takes their exact type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeAlias

from .errors import CESQLCastError, CESQLMathError

Value: TypeAlias = bool | int | str
# Calling the type gives its zero value, which an erroring expression yields (spec 3.3).
ValueType: TypeAlias = type[bool] | type[int] | type[str]
Cast: TypeAlias = Callable[[Value], Value]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Python's int() would also take surrounding blanks, underscores and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def int32(value: int) -> int:
    """Return `value` if it is a CESQL Integer, else raise the overflow as a math error."""
    if INT32_MIN <= value <= INT32_MAX:
        return value
    raise CESQLMathError(f"integer overflow: {value} is outside the 32-bit range")


def to_bool(value: Value) -> bool:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise CESQLCastError(f"cannot cast {value!r} to Boolean")
    return bool(value)


def to_int(value: Value) -> int:
    if isinstance(value, str):
        if _DECIMAL.fullmatch(value) and INT32_MIN <= (number := int(value)) <= INT32_MAX:
            return number
        raise CESQLCastError(f"cannot cast {value!r} to Integer")
    return int(value)


def to_str(value: Value) -> str:
    if isinstance(value, str):
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


# The cast to each type, for operators whose target type is the runtime type of an operand.
CASTS: Mapping[type, Cast] = {bool: to_bool, int: to_int, str: to_str}


def from_attribute(value: object) -> Value:
    """An event attribute as a CESQL value: what is not a Boolean or Integer is a String."""
    if isinstance(value, str) or type(value) is bool:
        return value
    if type(value) is int and INT32_MIN <= value <= INT32_MAX:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
