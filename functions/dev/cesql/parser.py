"""Parses CESQL text with lark, building the evaluator tree of `nodes` as it goes."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from lark.lexer import PatternStr

from . import functions, nodes
from .errors import CESQLParseError
from .nodes import Node
from .values import INT32_MAX, INT32_MIN

# The grammar has one NAME for both; the spec tells them apart (sections 2.2 and 2.4).
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+", re.IGNORECASE)
_FUNCTION_NAME = re.compile(r"[a-z][a-z_]*", re.IGNORECASE)


class _InvalidToken(Exception):
    """A token the grammar lets through but CESQL does not."""

    def __init__(self, reason: str, token: Token) -> None:
        super().__init__(reason)
        # lark types a token's position as optional; its lexer always sets it.
        self.line = cast(int, token.line)
        self.column = cast(int, token.column)


def _attribute_name(token: Token) -> str:
    if not _ATTRIBUTE_NAME.fullmatch(token):
        raise _InvalidToken(f"attribute name {token!s} may only have letters and digits", token)
    # CloudEvents attribute names are lower case; sdk-go lowers the identifiers too.
    return token.lower()


def _unquote(token: Token) -> str:
    quote = token[0]
    return token[1:-1].replace("\\" + quote, quote)


@v_args(inline=True)
class _Builder(Transformer[Token, Node]):
    def integer(self, token: Token) -> Node:
        value = int(token)
        if not INT32_MIN <= value <= INT32_MAX:
            raise _InvalidToken(f"integer {token!s} is outside the 32-bit range", token)
        return nodes.literal(value)

    def string(self, token: Token) -> Node:
        return nodes.literal(_unquote(token))

    def boolean(self, token: Token) -> Node:
        return nodes.literal(token.lower() == "true")

    def attribute(self, name: Token) -> Node:
        return nodes.attribute(_attribute_name(name))

    def exists(self, name: Token) -> Node:
        return nodes.exists(_attribute_name(name))

    def call(self, name: Token, *arguments: Node) -> Node:
        if not _FUNCTION_NAME.fullmatch(name):
            raise _InvalidToken(f"function name {name!s} may only have letters and '_'", name)
        return functions.call(name, arguments)

    def not_(self, _keyword: Token, operand: Node) -> Node:
        return nodes.not_(operand)

    def negate(self, _sign: Token, operand: Node) -> Node:
        return nodes.negate(operand)

    def arithmetic(self, left: Node, symbol: Token, right: Node) -> Node:
        return nodes.arithmetic(str(symbol), left, right)

    def comparison(self, left: Node, symbol: Token, right: Node) -> Node:
        return nodes.comparison(str(symbol), left, right)

    def logic(self, left: Node, keyword: Token, right: Node) -> Node:
        return nodes.logic(keyword.lower(), left, right)

    def like(self, operand: Node, negation: Token | None, pattern: Token) -> Node:
        return nodes.like(operand, _unquote(pattern), negated=negation is not None)

    def in_set(self, operand: Node, negation: Token | None, *elements: Node) -> Node:
        return nodes.in_set(operand, elements, negated=negation is not None)


_PARSER = Lark.open(
    "grammar.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    transformer=_Builder(),
    maybe_placeholders=True,
)

_DESCRIPTIONS = {
    "$END": "the end of the expression",
    "NAME": "a name",
    "INTEGER": "an integer",
    "STRING": "a string",
    "BOOLEAN": "TRUE, FALSE",
    "COMPARISON": "a comparison",
    "MULTIPLICATIVE": "'*', '/', '%'",
}


def _describe(terminal: str) -> str:
    if terminal in _DESCRIPTIONS:
        return _DESCRIPTIONS[terminal]
    pattern = _PARSER.get_terminal(terminal).pattern
    # Punctuation reads best quoted; the keywords' terminals are named after them.
    return repr(pattern.value) if isinstance(pattern, PatternStr) else terminal.lstrip("_")


def _expected(terminals: Collection[str]) -> str:
    described = sorted({_describe(terminal) for terminal in terminals})
    return ("expected " if len(described) == 1 else "expected one of ") + ", ".join(described)


def parse(expression: str) -> Node:
    """The evaluator tree of `expression`; raises CESQLParseError if it is not valid CESQL."""
    try:
        # With an inline transformer, lark's parse() returns what the transformer builds.
        return cast(Node, _PARSER.parse(expression))
    except _InvalidToken as error:
        raise CESQLParseError(str(error), error.line, error.column) from None
    except UnexpectedToken as error:
        if error.token.type == "$END":
            found = "end of the expression"
            line = expression.count("\n") + 1
            column = len(expression.rsplit("\n", 1)[-1]) + 1
        else:
            found, line, column = repr(str(error.token)), error.line, error.column
        raise CESQLParseError(
            f"unexpected {found}, {_expected(error.accepts)}", line, column
        ) from None
    except UnexpectedCharacters as error:
        reason = "unterminated string" if error.char in "'\"" else f"unexpected {error.char!r}"
        raise CESQLParseError(reason, error.line, error.column) from None
