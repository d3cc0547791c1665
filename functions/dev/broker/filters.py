"""Trigger filters, compiled once when the broker loads (reference, section (b)).

A filter maps an event's attributes, all as text, to Pass, Fail or NoFilter; only
Fail keeps the event from the subscriber. The structure follows knative/eventing
`pkg/eventfilter`: a dialect entry Knative cannot build (an empty name or value, an
empty list) is skipped, not refused, and `all`/`any` of one child is that child.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from functions.dev.cesql import CESQLParseError
from functions.dev.cesql import compile as compile_cesql
from functions.topology import Trigger

Attributes = Mapping[str, str]


class Result(Enum):
    PASS = "pass"
    FAIL = "fail"
    NO_FILTER = "no filter"


Filter = Callable[[Attributes], Result]
_ALIASES = {"schemaurl": "dataschema"}


def _no_filter(_: Attributes) -> Result:
    return Result.NO_FILTER


def _lookup(event: Attributes, name: str) -> str | None:
    """attributes.LookupAttribute: a few legacy names, then context attributes and extensions."""
    if name == "datamediatype":
        content_type = event.get("datacontenttype")
        return content_type.split(";", 1)[0].strip().lower() if content_type else None
    return event.get(_ALIASES.get(name, name))


def _attributes(wanted: Mapping[str, str]) -> Filter:
    """The classic `filter.attributes`: every key must match exactly; "" means any value."""

    def check(event: Attributes) -> Result:
        for name, expected in wanted.items():
            value = _lookup(event, name)
            if not value or (expected and value != expected):
                return Result.FAIL
        return Result.PASS

    return check


def _comparison(test: Callable[[str, str], bool], wanted: Mapping[str, str]) -> Filter | None:
    """exact/prefix/suffix; None (skipped) when a name or value is empty."""
    if not wanted or not all(name and value for name, value in wanted.items()):
        return None

    def check(event: Attributes) -> Result:
        for name, expected in wanted.items():
            value = _lookup(event, name)
            if value is None or not test(value, expected):
                return Result.FAIL
        return Result.PASS

    return check


def _sequence(children: list[Filter], decisive: Result) -> Filter:
    """`all` (decided by the first Fail) or `any` (by the first Pass); else the last result."""
    if len(children) == 1:
        return children[0]

    def check(event: Attributes) -> Result:
        result = Result.NO_FILTER
        for child in children:
            result = child(event)
            if result is decisive:
                return result
        return result

    return check


def _not(child: Filter | None) -> Filter:
    if child is None:
        return _no_filter
    inverse = {Result.PASS: Result.FAIL, Result.FAIL: Result.PASS}

    def check(event: Attributes) -> Result:
        result = child(event)
        return inverse.get(result, result)

    return check


def _cesql(source: str) -> Filter | None:
    if not source:
        return None
    expression = compile_cesql(source)

    def check(event: Attributes) -> Result:
        return Result.PASS if expression.matches(event) else Result.FAIL

    return check


def _entries(entries: list[dict[str, Any]]) -> list[Filter]:
    return [built for entry in entries if (built := _entry(entry)) is not None]


def _entry(entry: Mapping[str, Any]) -> Filter | None:
    """One dialect entry (topology.py has checked its shape), or None when Knative skips it."""
    ((dialect, body),) = entry.items()
    if dialect == "exact":
        return _comparison(str.__eq__, body)
    if dialect == "prefix":
        return _comparison(str.startswith, body)
    if dialect == "suffix":
        return _comparison(str.endswith, body)
    if dialect in ("all", "any"):
        decisive = Result.FAIL if dialect == "all" else Result.PASS
        return _sequence(_entries(body), decisive) if body else None
    if dialect == "not":
        return _not(_entry(body))
    return _cesql(body)


def compile_trigger(trigger: Trigger) -> Filter:
    """`filters` when non-empty (an implicit `all`), else `filter.attributes`, else none."""
    try:
        if trigger.filters:
            return _sequence(_entries(trigger.filters), Result.FAIL)
    except CESQLParseError as error:
        # Knative's webhook refuses such a Trigger, so the broker refuses to start.
        raise ValueError(f"trigger {trigger.name!r}: invalid cesql filter: {error}") from None
    if trigger.filter is not None:
        return _attributes(trigger.filter.attributes)
    return _no_filter
