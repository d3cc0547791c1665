"""ISO-8601 durations read the way Knative reads `backoffDelay` and `timeout`.

Knative parses them with github.com/rickb777/date/period (reference, section (c)),
whose quirks are part of the behaviour a user sees on a cluster, so they are kept:
each field is a fixed-point number with ONE decimal digit (`PT0.25S` is 0.2 s,
`PT0.05S` is 0), a field must fit in 16 bits once multiplied by ten (so
`PT3600S` is refused, write `PT1H`), and years, months and days are
approximations (365.2425 days, 30.436875 days, 24 hours).
"""

from __future__ import annotations

import re

# A field's value in tenths is a Go int16.
_INT16 = range(-(2**15), 2**15)
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Microseconds per tenth of each calendar field (period.go `totalDaysApproxE7`, whose
# unit is 1e-7 day, times 8640 µs).
_YEAR_TENTH_US = 3652425 * 100 * 8640
_MONTH_TENTH_US = 30436875 * 8640
_DAY_TENTH_US = 1000000 * 8640
# Milliseconds per tenth of each clock field (period.go `totalSecondsE3`).
_HOUR_TENTH_MS = 360000
_MINUTE_TENTH_MS = 6000
_SECOND_TENTH_MS = 100


def _tenths(text: str, original: str) -> int:
    """parse.go `parseDecimalFixedPoint`: keep one decimal digit, drop the rest."""
    dot = text.find(".")
    if dot < 0:
        dot = text.find(",")
    if dot < 0:
        digits = text + "0"
    elif len(text) - dot > 1:
        digits = text[:dot] + text[dot + 1 : dot + 2]
    else:
        digits = text[:dot] + "0"
    if not _INTEGER.fullmatch(digits) or int(digits) not in _INT16:
        raise ValueError(f"{original!r} is not an ISO-8601 duration Knative accepts")
    return int(digits)


class _Fields:
    """parse.go `parseState`: fields are read left to right by their marker."""

    def __init__(self, original: str, rest: str) -> None:
        self.original = original
        self.rest = rest
        self.found = False

    def take(self, mark: str) -> int:
        at = self.rest.find(mark)
        if at <= 0:
            return 0
        value = _tenths(self.rest[:at], self.original)
        self.rest = self.rest[at + 1 :]
        self.found = True
        return value


def parse(text: str) -> float:
    """Seconds in an ISO-8601 duration such as `PT0.2S`; ValueError if Knative would refuse it."""
    if text == "P0":
        return 0.0
    body = text
    sign = -1 if body.startswith("-") else 1
    if body[:1] in ("-", "+"):
        body = body[1:]
    if not body.startswith("P"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration: it must start with 'P'")
    body = body[1:]
    fields = _Fields(text, body)
    hours = minutes = seconds = 0
    clock = body.find("T")
    if clock >= 0:
        fields.rest = body[clock + 1 :]
        hours, minutes, seconds = fields.take("H"), fields.take("M"), fields.take("S")
        fields.rest = body[:clock]
    years, months = fields.take("Y"), fields.take("M")
    days = fields.take("W") * 7 + fields.take("D")
    if not fields.found:
        raise ValueError(f"{text!r} is not an ISO-8601 duration: it has no Y, M, W, D, H, M or S")
    microseconds = years * _YEAR_TENTH_US + months * _MONTH_TENTH_US + days * _DAY_TENTH_US
    milliseconds = hours * _HOUR_TENTH_MS + minutes * _MINUTE_TENTH_MS + seconds * _SECOND_TENTH_MS
    return sign * (microseconds / 1e6 + milliseconds / 1e3)
