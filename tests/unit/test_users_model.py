"""The users API's input rules, tags and cursors, without any server."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from functions.users.model import (
    NewUser,
    User,
    UserChanges,
    after,
    cursor,
    email_key,
    etag,
    is_id,
    matches,
    new_id,
)


def errors(model: type[NewUser] | type[UserChanges], body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {".".join(map(str, e["loc"])) for e in caught.value.errors()}


def test_a_name_is_trimmed_and_composed() -> None:
    user = NewUser.model_validate({"name": "  Zoe\u0308 ", "email": "zoe@example.com"})
    assert user.name == "Zo\u00eb"


@pytest.mark.parametrize(
    "name",
    ["A", "  A  ", "x" * 101, "e\u0301", "Ada\nLovelace", "Ada\u0000", "Ada\x7f", "", "   "],
)
def test_names_outside_the_rules_are_refused(name: str) -> None:
    assert errors(NewUser, {"name": name, "email": "a@example.com"}) == {"name"}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("\u200b\u200b\u200b", "an invisible format character (U+200B)"),  # zero-width spaces
        ("\u202eAda Lovelace", "an invisible format character (U+202E)"),  # a bidi override
        ("Ada\u00adLovelace", "an invisible format character (U+00AD)"),  # a soft hyphen
        ("Ada\uffff", "a noncharacter (U+FFFF)"),
        ("Ada\ufdd0", "a noncharacter (U+FDD0)"),
        ("Ada\U000e0001", "an invisible format character (U+E0001)"),  # a language tag
        ("Ada\ue000", "a private-use character (U+E000)"),
        ("Ada\u2028Lovelace", "a line separator (U+2028)"),
        ("Ada\u2029Lovelace", "a paragraph separator (U+2029)"),
        ("Ada\r\nLovelace", "a control character (U+000D)"),
    ],
)
def test_names_with_invisible_or_meaningless_characters_are_refused(name: str, kind: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"must not contain {kind}")):
        NewUser.model_validate({"name": name, "email": "a@example.com"})


@pytest.mark.parametrize(
    "name", ["\u3000\u3000", "\u00a0 \u2003", "\u2028\u2029", "\u200c\u200d", "\u200d \u200d"]
)
def test_names_blank_after_trimming_unicode_spaces_are_refused(name: str) -> None:
    assert errors(NewUser, {"name": name, "email": "a@example.com"}) == {"name"}


@pytest.mark.parametrize(
    "name",
    [
        "Al",
        "x" * 100,
        "  " + "x" * 100 + "  ",
        "李小",
        "🦄🦄",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645",  # Persian, with a zero-width non-joiner
        "Ada \U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: emoji joined by U+200D
        "Ada \U0001fae8",  # assigned after this Python's Unicode tables (Unicode 15)
    ],
)
def test_names_inside_the_rules_are_kept(name: str) -> None:
    assert NewUser.model_validate({"name": name, "email": "a@example.com"}).name == name.strip()


def test_an_email_is_normalized_and_keyed_case_insensitively() -> None:
    user = NewUser.model_validate({"name": "Ada", "email": "Ada@EXAMPLE.com"})
    assert user.email == "Ada@example.com"
    assert email_key(user.email) == email_key("ADA@example.COM") == "ada@example.com"


@pytest.mark.parametrize(
    "email",
    ["plain", "a@b", "a@localhost", "a@@example.com", "a@example..com", "x" * 250 + "@a.io"],
)
def test_addresses_that_are_not_are_refused(email: str) -> None:
    assert errors(NewUser, {"name": "Ada", "email": email}) == {"email"}


@pytest.mark.parametrize(
    "value",
    [{"$gt": ""}, {"$ne": None}, {"$regex": ".*"}, ["a@example.com"], 42, True, None],
)
def test_anything_but_a_string_is_refused_so_no_operator_gets_through(value: Any) -> None:
    assert errors(NewUser, {"name": value, "email": value}) == {"name", "email"}
    assert errors(UserChanges, {"name": value}) == {"name"}


def test_unknown_fields_are_refused() -> None:
    body = {"name": "Ada", "email": "a@example.com", "$where": "1", "status": "admin"}
    assert errors(NewUser, body) == {"$where", "status"}
    assert errors(UserChanges, {"id": "x"}) == {"id"}


def test_changes_hold_only_what_was_given() -> None:
    assert UserChanges.model_validate({}).given() == {}
    assert UserChanges.model_validate({"email": "A@Example.com"}).given() == {
        "email": "A@example.com"
    }


def test_a_change_to_null_is_refused() -> None:
    assert errors(UserChanges, {"name": None}) == {"name"}


def test_the_change_schema_does_not_offer_null() -> None:
    properties = UserChanges.model_json_schema()["properties"]
    assert properties["name"]["type"] == "string"
    assert properties["email"]["type"] == "string"


def test_new_ids_are_canonical_uuid7() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_id(i) for i in ids)
    assert not is_id("01900000-0000-4000-8000-000000000000")
    assert not is_id(new_id().upper())


def user(**changes: Any) -> User:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": new_id(),
        "name": "Ada",
        "email": "ada@example.com",
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }
    return User(**(fields | changes))


def test_the_etag_changes_with_the_representation_only() -> None:
    ada = user()
    assert etag(ada) == etag(User.model_validate(ada.model_dump()))
    assert etag(ada) != etag(ada.model_copy(update={"name": "Ada King"}))
    assert etag(ada).startswith('"') and etag(ada).endswith('"')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
        ("", False),
    ],
)
def test_if_none_match_uses_weak_comparison(header: str, expected: bool) -> None:
    assert matches(header, '"abc"') is expected


def test_a_cursor_round_trips_and_nothing_else_passes() -> None:
    last = new_id()
    assert after(cursor(last)) == last
    for bad in ("", "garbage!", cursor("not-an-id"), '{"$gt":""}', "e30"):
        with pytest.raises(ValueError, match="cursor"):
            after(bad)


def test_the_user_is_camel_case_on_the_wire() -> None:
    wire = user().model_dump(mode="json")
    assert set(wire) == {"id", "name", "email", "status", "createdAt", "updatedAt"}
    assert wire["createdAt"] == "2026-01-02T03:04:05.678000Z"
