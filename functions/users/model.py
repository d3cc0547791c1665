"""The user as the API takes and shows it, and the rules its fields follow.

Every input field is a strict string: a JSON object such as `{"$gt": ""}`
never validates, so a request body cannot carry a MongoDB operator into a query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

from functions.names import DisplayName

# A UUIDv7 in canonical form: 74 random bits make ids unguessable, and the
# time-ordered prefix makes them a stable sort key for pagination.
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_ID = re.compile(ID_PATTERN)
NAME_MIN, NAME_MAX = 2, 100


def new_id() -> str:
    import uuid_utils

    return str(uuid_utils.uuid7())


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


Name = Annotated[str, DisplayName(min_length=NAME_MIN, max_length=NAME_MAX)]
Email = Annotated[
    str,
    Strict(),
    Field(max_length=254, json_schema_extra={"format": "email"}),
    AfterValidator(_email),
]


def email_key(email: str) -> str:
    """The form that is unique: two addresses that differ only in case are one."""
    return email.casefold()


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="2 to 100 characters after trimming")
    email: Email = Field(description="Unique, case-insensitively")


class UserChanges(BaseModel):
    """A partial update: a field left out stays as it is; null is not a value."""

    model_config = ConfigDict(extra="forbid")

    # Not `Name | None`: a union would name its branches in every error, and null
    # must be refused, not read as "left out". The None default is never validated.
    name: Name = Field(default=None)  # type: ignore[assignment]
    email: Email = Field(default=None)  # type: ignore[assignment]

    def given(self) -> dict[str, str]:
        return self.model_dump(exclude_unset=True)


class _Out(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True, frozen=True
    )


class User(_Out):
    id: str
    name: str
    email: str
    status: Literal["active"]
    created_at: datetime
    updated_at: datetime


class UserPage(_Out):
    items: list[User]
    next_cursor: str | None = Field(description="The `cursor` of the next page; null at the end")


def etag(user: User) -> str:
    """A strong validator: it changes whenever the representation does."""
    return '"' + hashlib.sha256(user.model_dump_json().encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110's weak comparison, as If-None-Match asks for."""
    if if_none_match.strip() == "*":
        return True
    return any(
        candidate.strip().removeprefix("W/") == tag.removeprefix("W/")
        for candidate in if_none_match.split(",")
    )


def cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def after(cursor: str) -> str:
    """The id a cursor continues after; ValueError for anything this API did not hand out."""
    try:
        last_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor from this API") from None
    if not is_id(last_id):
        raise ValueError("not a cursor from this API")
    return last_id
