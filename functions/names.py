"""The one rule for a name shown to people: a user's, a product's.

    name: Annotated[str, DisplayName(min_length=2, max_length=100)]

A name is a strict string, trimmed and in Unicode NFC (so "é" typed two ways
is one name), with only visible characters and spaces between them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler

# Unicode general categories a name may not contain, and what to call them in an error.
FORBIDDEN = {
    "Cc": "a control character",  # NUL, CR/LF, ESC: they break mail headers and logs
    "Cf": "an invisible format character",  # zero-width spaces, bidi overrides like U+202E
    "Cs": "a surrogate",  # a lone surrogate cannot even be stored as UTF-8
    "Co": "a private-use character",  # no meaning shared with whoever reads the name
    # A name is one line wherever it goes: an email subject, a header, a log line.
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
# The two format characters that writing needs: the zero-width non-joiner and joiner
# shape Persian and Indic names, and join emoji such as a family into one.
JOINERS = frozenset("\u200c\u200d")


@dataclass(frozen=True, slots=True)
class DisplayName:
    """Pydantic metadata that makes a `str` field a display name of the given length."""

    min_length: int
    max_length: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Trimming first means a name of spaces alone is too short, so blank.
        text = core_schema.str_schema(
            strict=True,
            strip_whitespace=True,
            min_length=self.min_length,
            max_length=self.max_length,
        )
        return core_schema.no_info_after_validator_function(self._visible, text)

    def _visible(self, value: str) -> str:
        value = unicodedata.normalize("NFC", value)
        # Composing only ever shortens, so the lower bound is checked again.
        if len(value) < self.min_length:
            raise ValueError(f"should have at least {self.min_length} characters")
        for char in value:
            if char in JOINERS:
                continue
            if (kind := FORBIDDEN.get(unicodedata.category(char))) is not None:
                raise ValueError(f"must not contain {kind} (U+{ord(char):04X})")
            if _is_noncharacter(char):
                raise ValueError(f"must not contain a noncharacter (U+{ord(char):04X})")
        if all(char in JOINERS or char.isspace() for char in value):
            raise ValueError("must have a visible character")
        return value


def _is_noncharacter(char: str) -> bool:
    """U+FDD0..U+FDEF and the last two of every plane (U+FFFE, U+FFFF, ...): never text.

    Other unassigned code points pass: they may be characters (a new emoji) that
    this Python's Unicode tables predate.
    """
    point = ord(char)
    return 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE
