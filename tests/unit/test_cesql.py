"""CloudEvents SQL v1: syntax, operators, built-in functions, errors and Knative's filter rule.

The cases follow the areas of the spec's TCK (cesql/cesql_tck), in our own words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from functions.dev.cesql import (
    CESQLCastError,
    CESQLEvaluationError,
    CESQLFunctionEvaluationError,
    CESQLMathError,
    CESQLMissingAttributeError,
    CESQLMissingFunctionError,
    CESQLParseError,
    Result,
    Value,
    compile,
)

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "order-1",
    "source": "/shop/orders",
    "type": "shop.order.placed",
    "subject": "42",
    "time": "2024-06-13T10:00:00Z",
    "sequence": "5",
    "priority": 3,
    "express": True,
    "note": "line one\nline two",
}


def evaluate(expression: str, event: dict[str, Any] = EVENT) -> Result:
    return compile(expression).evaluate(event)


def assert_value(expression: str, expected: Value, event: dict[str, Any] = EVENT) -> None:
    result = evaluate(expression, event)
    assert result.error is None, result.error
    # Compare types too: in Python True == 1 and False == 0.
    assert (type(result.value), result.value) == (type(expected), expected)


def assert_error(
    expression: str,
    kind: type[CESQLEvaluationError],
    value: Value,
    event: dict[str, Any] = EVENT,
) -> None:
    result = evaluate(expression, event)
    assert isinstance(result.error, kind), result
    assert (type(result.value), result.value) == (type(value), value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("TRUE", True),
        ("false", False),
        ("0", 0),
        ("42", 42),
        ("+7", 7),
        ("-7", -7),
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("'abc'", "abc"),
        ('"AbC"', "AbC"),
        ("''", ""),
        ("'a\"b\\'c'", "a\"b'c"),
        ('"a\'b\\"c"', "a'b\"c"),
        # Only the quote is an escape; any other backslash stays as written.
        ("'a\\nb'", "a\\nb"),
        ("'multi\nline'", "multi\nline"),
        ("(TRUE)", True),
        ("((1))", 1),
    ],
)
def test_literals(expression: str, expected: Value) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "line", "column", "reason"),
    [
        ("", 1, 1, "unexpected end of the expression"),
        ("1 +", 1, 4, "unexpected end of the expression"),
        ("(1 = 1", 1, 7, "expected ')'"),
        ("a b", 1, 3, "unexpected 'b'"),
        ("x IN ()", 1, 7, "unexpected ')'"),
        ("x LIKE 123", 1, 8, "expected a string"),
        ("x LIKE y", 1, 8, "expected a string"),
        ("EXISTS 'id'", 1, 8, "expected a name"),
        ("'abc", 1, 1, "unterminated string"),
        ("1 # 2", 1, 3, "unexpected '#'"),
        ("1.5", 1, 2, "unexpected '.'"),
        ("a ORb", 1, 3, "unexpected 'ORb'"),
        ("and = 1", 1, 1, "unexpected 'and'"),
        ("'it''s'", 1, 5, "unexpected \"'s'\""),
        ("2147483648", 1, 1, "outside the 32-bit range"),
        ("1 + -2147483649", 1, 5, "outside the 32-bit range"),
        ("my_ext = 'x'", 1, 1, "attribute name my_ext"),
        ("EXISTS my_ext", 1, 8, "attribute name my_ext"),
        ("f1(2)", 1, 1, "function name f1"),
        ("TRUE AND\n  (1 =\n", 3, 1, "unexpected end of the expression"),
    ],
)
def test_parse_errors_say_what_and_where(
    expression: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(CESQLParseError) as caught:
        compile(expression)

    assert (caught.value.line, caught.value.column) == (line, column)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("4 + 1", 5),
        ("-4 + 1", -3),
        ("4 + -1", 3),
        ("4 - 1", 3),
        ("5-3", 2),
        ("5 - -3", 8),
        ("+5 + +5", 10),
        ("6 * 7", 42),
        ("5 / 3", 1),
        ("-7 / 2", -3),
        ("7 / -2", -3),
        ("5 % 2", 1),
        ("-7 % 2", -1),
        ("7 % -2", 1),
        ("-2147483648 % -1", 0),
        ("-(4)", -4),
        ("--10", 10),
        ("- -10", 10),
        ("2147483646 + 1", 2147483647),
        ("-2147483647 - 1", -2147483648),
        # Operands are cast to Integer.
        ("'5' + 3", 8),
        ("5 + '3'", 8),
        ("'5' + '3'", 8),
        ("5 + TRUE", 6),
        ("-'10'", -10),
        ("--'10'", 10),
        ("-TRUE", -1),
        ("sequence * 2", 10),
        ("priority + 1", 4),
        # Blanks, tabs and line breaks only separate tokens.
        ("\t4\r\n+\n1 ", 5),
    ],
)
def test_arithmetic(expression: str, expected: int) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    "expression",
    [
        "5 / 0",
        "5 % 0",
        "2147483647 + 1",
        "-2147483648 - 1",
        "65536 * 32768",
        "-2147483648 / -1",
        "-(-2147483648)",
    ],
)
def test_division_by_zero_and_32_bit_overflow_are_math_errors(expression: str) -> None:
    assert_error(expression, CESQLMathError, 0)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("TRUE = FALSE", False),
        ("FALSE = FALSE", True),
        ("2 = 2", True),
        ("'abc' = 'abc'", True),
        ("'abc' = 'ABC'", False),
        ("1 != 2", True),
        ("2 != 2", False),
        ("'abc' <> 'abc'", False),
        ("TRUE <> FALSE", True),
        ("1 < 2", True),
        ("2 < 2", False),
        ("2 <= 2", True),
        ("3 <= 2", False),
        ("2 > 1", True),
        ("2 > 2", False),
        ("2 >= 2", True),
        ("2 >= 3", False),
        # `=` takes the right operand's type: the left one is cast to it.
        ("sequence = 5", True),
        ("sequence = 6", False),
        ("TRUE = 'TRUE'", False),
        ("TRUE = 'true'", True),
        ("'TRUE' = TRUE", True),
        ("1 = 'abc'", False),
        ("priority = '3'", True),
        ("express = 'true'", True),
        # Orderings exist for Integers only.
        ("'10' > 9", True),
        ("TRUE > 0", True),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    "expression",
    ["'abc' = 1", "'yes' = TRUE", "'abc' < 'abd'", "source >= 1"],
)
def test_comparison_operands_that_do_not_cast_are_cast_errors(expression: str) -> None:
    assert_error(expression, CESQLCastError, False)


@pytest.mark.parametrize(
    ("left", "right", "and_", "or_", "xor"),
    [
        ("FALSE", "FALSE", False, False, False),
        ("FALSE", "TRUE", False, True, True),
        ("TRUE", "FALSE", False, True, True),
        ("TRUE", "TRUE", True, True, False),
    ],
)
def test_logic_truth_tables(left: str, right: str, and_: bool, or_: bool, xor: bool) -> None:
    assert_value(f"{left} AND {right}", and_)
    assert_value(f"{left} OR {right}", or_)
    assert_value(f"{left} XOR {right}", xor)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("NOT TRUE", False),
        ("NOT FALSE", True),
        ("NOT 'TRUE'", False),
        ("NOT 'false'", True),
        ("NOT 10", False),
        ("NOT 0", True),
        ("NOT NOT TRUE", True),
        ("1 AND 'true'", True),
        ("0 OR 'FALSE'", False),
        ("express AND subject = '42'", True),
    ],
)
def test_logic_casts_operands_to_boolean(expression: str, expected: bool) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize("expression", ["NOT 'yes'", "TRUE AND 'yes'", "'no' OR TRUE"])
def test_logic_operands_that_do_not_cast_are_cast_errors(expression: str) -> None:
    assert_error(expression, CESQLCastError, False)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("FALSE AND missing", False),
        ("FALSE AND (1 != 1 / 0)", False),
        ("FALSE AND nofunction()", False),
        ("TRUE OR missing", True),
        ("TRUE OR (1 != 1 / 0)", True),
        ("subject = '42' OR missing = 'x'", True),
    ],
)
def test_and_or_skip_the_right_operand_once_the_left_decides(
    expression: str, expected: bool
) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("TRUE AND missing", CESQLMissingAttributeError),
        ("TRUE AND (1 != 1 / 0)", CESQLMathError),
        ("FALSE OR missing", CESQLMissingAttributeError),
        ("FALSE OR (1 != 1 / 0)", CESQLMathError),
        ("TRUE XOR missing", CESQLMissingAttributeError),
        ("FALSE XOR missing", CESQLMissingAttributeError),
        ("missing AND FALSE", CESQLMissingAttributeError),
    ],
)
def test_and_or_evaluate_the_right_operand_when_needed_and_xor_always(
    expression: str, kind: type[CESQLEvaluationError]
) -> None:
    assert_error(expression, kind, False)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("4 * 2 + 4 / 2", 10),
        ("4 * (2 + 4) / 2", 12),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 - 4 - 3", 3),
        ("100 / 10 / 5", 2),
        ("1 + 1 = 2", True),
        ("1 = 1 AND 2 = 2", True),
        # Comparisons group to the left: (3 > 2) > 1 is TRUE > 1, that is 1 > 1.
        ("3 > 2 > 1", False),
        # AND, OR and XOR share one level and group to the right, as in the spec's ANTLR
        # grammar and so in Knative: FALSE AND (FALSE OR TRUE).
        ("FALSE AND FALSE OR TRUE", False),
        ("(FALSE AND FALSE) OR TRUE", True),
        ("TRUE OR TRUE AND FALSE", True),
        ("TRUE XOR TRUE AND FALSE", True),
        # LIKE and IN bind tighter than arithmetic: 1 + (1 IN (1)) is 1 + TRUE.
        ("1 + 1 IN (1)", 2),
        ("2 * 3 LIKE '3'", 2),
        # Unary minus binds tighter than LIKE: (-'5') LIKE '-5'.
        ("-'5' LIKE '-5'", True),
    ],
)
def test_precedence_and_grouping(expression: str, expected: Value) -> None:
    assert_value(expression, expected)


def test_not_binds_tighter_than_comparisons_and_like() -> None:
    # NOT 'x' is evaluated first, and 'x' is no Boolean.
    assert_error("NOT 'x' = 'x'", CESQLCastError, False)
    assert_error("NOT 'abc' LIKE 'a%'", CESQLCastError, False)


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "ABC", False),
        ("abc", "a%b%c", True),
        ("azzzbzzzc", "a%b%c", True),
        ("ac", "abc", False),
        ("", "abc", False),
        ("", "%", True),
        ("", "", True),
        (".ab.cde.", ".%.%.", True),
        ("ab.cde", ".%.%.", False),
        ("abc", "a_b_c", False),
        ("azbzc", "a_b_c", True),
        ("abzc", "a_b_c", False),
        ("ab", "_b%", True),
        ("abcd1", "_b%", True),
        ("b", "_b%", False),
        ("aBc", "_b%", False),
        ("a_b_c", "a\\_b\\_c", True),
        ("azbzc", "a\\_b\\_c", False),
        ("a%b%c", "a\\%b\\%c", True),
        ("abc", "a\\%b\\%c", False),
        ("abc%", "abc\\%", True),
        ("abcd", "abc\\%", False),
        # A backslash before anything else is a backslash; regex syntax means nothing.
        ("ab\\c", "ab\\c", True),
        ("a.c", "a.c", True),
        ("abc", "a.c", False),
        ("a+", "a+", True),
        ("line one\nline two", "line%two", True),
    ],
)
def test_like(value: str, pattern: str, expected: bool) -> None:
    event = {**EVENT, "myext": value}
    assert_value(f"myext LIKE '{pattern}'", expected, event)
    assert_value(f"myext NOT LIKE '{pattern}'", not expected, event)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("234 LIKE '23_'", True),
        ("2344 LIKE '23_'", False),
        ("TRUE LIKE 'tr%'", True),
        ("FALSE LIKE 'tr%'", False),
        ("priority LIKE '3'", True),
        ("source like '/shop/%'", True),
        ("type NOT LIKE '%.cancelled'", True),
    ],
)
def test_like_casts_its_operand_to_string(expression: str, expected: bool) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'a' IN ('a', 'b')", True),
        ("'c' IN ('a', 'b')", False),
        ("'c' NOT IN ('a', 'b')", True),
        ("'a' NOT IN ('a')", False),
        ("type IN ('shop.order.cancelled', 'shop.order.placed')", True),
        # The elements are cast to the left operand's type.
        ("5 IN ('5', 6)", True),
        ("'5' IN (5)", True),
        ("TRUE IN ('true')", True),
        ("priority IN (1, 2, 3)", True),
        ("sequence IN (5)", True),
        ("1 IN (1 + 0, 2)", True),
        # The first match decides; later elements are not evaluated.
        ("1 IN (1, missing)", True),
        ("1 IN (1, 'x')", True),
    ],
)
def test_in(expression: str, expected: bool) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("1 IN ('x', 1)", CESQLCastError),
        ("1 IN (missing, 1)", CESQLMissingAttributeError),
        ("missing IN (1)", CESQLMissingAttributeError),
        ("'a' NOT IN ('b', missing)", CESQLMissingAttributeError),
    ],
)
def test_in_errors(expression: str, kind: type[CESQLEvaluationError]) -> None:
    assert_error(expression, kind, False)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("EXISTS id", True),
        ("EXISTS subject", True),
        ("EXISTS express", True),
        ("EXISTS dataschema", False),
        ("NOT EXISTS dataschema", True),
        ("EXISTS SUBJECT", True),
        ("exists subject AND subject = '42'", True),
    ],
)
def test_exists(expression: str, expected: bool) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"myext": "text"}, "text"),
        ({"myext": 10}, 10),
        ({"myext": True}, True),
        # What is not a CESQL Boolean or 32-bit Integer is a String (spec 3.2).
        ({"myext": 2**31}, "2147483648"),
        ({"myext": datetime(2024, 6, 13, 10, 0, tzinfo=UTC)}, "2024-06-13T10:00:00+00:00"),
    ],
)
def test_attributes_keep_boolean_and_integer_types(event: dict[str, Any], expected: Value) -> None:
    assert_value("myext", expected, event)


def test_attribute_names_are_case_insensitive() -> None:
    assert_value("ID = 'order-1' AND Type = 'shop.order.placed'", True)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("missing", False),
        ("missing = ''", False),
        ("TRUE AND (missing = '')", False),
        ("missing * 5", 0),
        ("-missing", 0),
        ("NOT missing", False),
        ("missing LIKE '%'", False),
        # The missing attribute is met before the division by zero could be.
        ("missing / 0", 0),
        ("UPPER(missing)", ""),
    ],
)
def test_a_missing_attribute_is_an_error_and_the_zero_value_of_the_expression(
    expression: str, value: Value
) -> None:
    assert_error(expression, CESQLMissingAttributeError, value)


def test_an_attribute_set_to_none_is_missing() -> None:
    event = {**EVENT, "subject": None}
    assert_error("subject = '42'", CESQLMissingAttributeError, False, event)
    assert_value("EXISTS subject", False, event)


@pytest.mark.parametrize(
    "expression",
    [
        "TRUE AND NOT FALSE OR subject LIKE '4%' XOR EXISTS id",
        "true and not false or subject like '4%' xor exists id",
        "True And Not False Or subject Like '4%' Xor Exists id",
    ],
)
def test_keywords_are_case_insensitive(expression: str) -> None:
    assert_value(expression, True)


@pytest.mark.parametrize("name", ["notify", "truex", "in1", "1st"])
def test_names_may_start_with_keywords_or_digits(name: str) -> None:
    assert_value(name, "yes", {name: "yes"})


@pytest.mark.parametrize(
    "expression",
    [
        "int(hop) < int(ttl) and int(hop) < 1000",
        "INT(hop) < INT(ttl) AND INT(hop) < 1000",
        "hop < ttl",
    ],
)
def test_the_specs_examples(expression: str) -> None:
    assert compile(expression).matches({**EVENT, "hop": "5", "ttl": "10"})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("LENGTH('abc')", 3),
        ("LENGTH('')", 0),
        ("LENGTH('ü€😀')", 3),
        ("LENGTH(TRUE)", 4),
        ("LENGTH(-12)", 3),
        ("CONCAT()", ""),
        ("CONCAT('a')", "a"),
        ("CONCAT('a', 'b', 'c')", "abc"),
        ("CONCAT('n', 1, TRUE)", "n1true"),
        ("CONCAT_WS(',')", ""),
        ("CONCAT_WS(',', 'a')", "a"),
        ("CONCAT_WS(',', 'a', 'b', 'c')", "a,b,c"),
        ("CONCAT_WS(0, 1, 2)", "102"),
        ("LOWER('AbC')", "abc"),
        ("UPPER('AbC')", "ABC"),
        ("UPPER('straße')", "STRASSE"),
        ("TRIM('   a b c   ')", "a b c"),
        ("TRIM('a b c')", "a b c"),
        ("TRIM('\t\n a \u00a0\u2003\u3000')", "a"),
        # U+001F is a control character, not Unicode white space.
        ("TRIM('\u001fa\u001f')", "\u001fa\u001f"),
        ("LEFT('abc', 2)", "ab"),
        ("LEFT('abc', 10)", "abc"),
        ("LEFT('abc', 0)", ""),
        ("LEFT('', 0)", ""),
        ("RIGHT('abc', 2)", "bc"),
        ("RIGHT('abc', 10)", "abc"),
        ("RIGHT('abc', 0)", ""),
        ("RIGHT('', 0)", ""),
        ("SUBSTRING('abcdef', 1)", "abcdef"),
        ("SUBSTRING('abcdef', 2)", "bcdef"),
        ("SUBSTRING('abcdef', 6)", "f"),
        ("SUBSTRING('Sakila', -3)", "ila"),
        ("SUBSTRING('Sakila', -6)", "Sakila"),
        ("SUBSTRING('Quadratically', 0)", ""),
        ("SUBSTRING('abcdef', 1, 6)", "abcdef"),
        ("SUBSTRING('abcdef', 2, 4)", "bcde"),
        ("SUBSTRING('abcdef', 5, 10)", "ef"),
        ("SUBSTRING('abcdef', 2, 0)", ""),
        ("SUBSTRING('Sakila', -5, 3)", "aki"),
        ("SUBSTRING('Quadratically', 0, 1)", ""),
        ("SUBSTRING(123456, '2', '3')", "234"),
        ("ABS(10)", 10),
        ("ABS(-10)", 10),
        ("ABS(0)", 0),
        ("ABS(-2147483647)", 2147483647),
        ("ABS('-5')", 5),
    ],
)
def test_builtins(expression: str, expected: Value) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "kind", "value"),
    [
        ("LEFT('abc', -2)", CESQLFunctionEvaluationError, ""),
        ("RIGHT('abc', -2)", CESQLFunctionEvaluationError, ""),
        ("SUBSTRING('abcdef', 7)", CESQLFunctionEvaluationError, ""),
        ("SUBSTRING('abcdef', -7)", CESQLFunctionEvaluationError, ""),
        ("SUBSTRING('abcdef', 10, 10)", CESQLFunctionEvaluationError, ""),
        ("SUBSTRING('abcdef', -10, 10)", CESQLFunctionEvaluationError, ""),
        ("SUBSTRING('abcdef', 2, -1)", CESQLFunctionEvaluationError, ""),
        ("ABS(-2147483648)", CESQLMathError, 0),
        ("LEFT('abc', 'x')", CESQLCastError, ""),
        ("ABS('x')", CESQLCastError, 0),
        ("LENGTH('abc', 'd')", CESQLMissingFunctionError, False),
        ("CONCAT_WS()", CESQLMissingFunctionError, False),
        ("SUBSTRING('abc')", CESQLMissingFunctionError, False),
        ("SUBSTRING('abc', 1, 2, 3)", CESQLMissingFunctionError, False),
        ("ABS()", CESQLMissingFunctionError, False),
        ("NOFUNCTION()", CESQLMissingFunctionError, False),
        ("HASPREFIX('abc', 'a')", CESQLMissingFunctionError, False),
    ],
)
def test_builtin_errors(expression: str, kind: type[CESQLEvaluationError], value: Value) -> None:
    assert_error(expression, kind, value)


@pytest.mark.parametrize(
    "expression",
    [
        "concat_ws('-', 'a', 'b') = 'a-b'",
        "Concat_Ws('-', 'a', 'b') = 'a-b'",
        "lower(UPPER('x')) = 'x'",
    ],
)
def test_function_names_are_case_insensitive(expression: str) -> None:
    assert_value(expression, True)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("INT('1')", 1),
        ("INT('-1')", -1),
        ("INT('+7')", 7),
        ("INT('007')", 7),
        ("INT('2147483647')", 2147483647),
        ("INT('-2147483648')", -2147483648),
        ("INT(1)", 1),
        ("INT(TRUE)", 1),
        ("INT(FALSE)", 0),
        ("INT(sequence) + 1", 6),
        ("BOOL('TRUE')", True),
        ("BOOL('tRuE')", True),
        ('BOOL("false")', False),
        ("BOOL(TRUE)", True),
        ("BOOL(0)", False),
        ("BOOL(1)", True),
        ("BOOL(-50)", True),
        ("BOOL(express)", True),
        ("STRING(TRUE)", "true"),
        ("STRING(FALSE)", "false"),
        ("STRING(1)", "1"),
        ("STRING(-1)", "-1"),
        ("STRING(0)", "0"),
        ("STRING('abc')", "abc"),
        ("IS_INT('12')", True),
        ("IS_INT(sequence)", True),
        ("IS_INT(TRUE)", True),
        ("IS_INT('1.5')", False),
        ("IS_INT('2147483648')", False),
        ("IS_BOOL('false')", True),
        ("IS_BOOL(10)", True),
        ("IS_BOOL('yes')", False),
    ],
)
def test_casts(expression: str, expected: Value) -> None:
    assert_value(expression, expected)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("INT('ABC')", 0),
        ("INT('')", 0),
        ("INT(' 1')", 0),
        ("INT('1_000')", 0),
        ("INT('١٢')", 0),
        ("INT('2147483648')", 0),
        ("INT('-2147483649')", 0),
        ("BOOL('ABC')", False),
        ("BOOL('1')", False),
        ("BOOL(' true')", False),
    ],
)
def test_casts_that_fail_are_cast_errors(expression: str, value: Value) -> None:
    assert_error(expression, CESQLCastError, value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("type = 'shop.order.placed'", True),
        ("type = 'shop.order.cancelled'", False),
        ("EXISTS subject", True),
        # A result that is not the Boolean true does not pass.
        ("priority", False),
        ("'true'", False),
        ("1", False),
        # Nor does one with an error, whatever its value.
        ("missing = 'x'", False),
        ("NOT (missing = 'x')", False),
        ("1 / 0 = 0", False),
        ("nofunction(type)", False),
        ("INT(type) = 0", False),
        ("FALSE AND missing = 'x'", False),
        ("TRUE OR missing = 'x'", True),
    ],
)
def test_matches_is_knatives_filter_rule(expression: str, expected: bool) -> None:
    assert compile(expression).matches(EVENT) is expected


def test_compiled_expressions_are_cached_and_reusable() -> None:
    expression = compile("subject = '42'")

    assert compile("subject = '42'") is expression
    assert expression.matches(EVENT)
    assert not expression.matches({**EVENT, "subject": "43"})
    assert expression.source == "subject = '42'"
    assert repr(expression) == "Expression(source=\"subject = '42'\")"


def test_evaluation_does_not_change_the_event() -> None:
    event = dict(EVENT)
    compile("LOWER(type) = type AND priority + 1 = 4").evaluate(event)

    assert event == EVENT
