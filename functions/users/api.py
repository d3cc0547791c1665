"""The users HTTP API.

Permissions: `user:create`, `user:read`, `user:update`, `user:delete`, `user:list`.
A user may also read and update themself: the token's `sub` is their id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from functions.runtime import BadRequest, Forbidden, outbox
from functions.runtime.auth import AUTH_RESPONSES, Claims, authenticate, require
from functions.runtime.errors import openapi_responses
from functions.users import store
from functions.users.main import function
from functions.users.model import (
    ID_PATTERN,
    NewUser,
    User,
    UserChanges,
    UserPage,
    after,
    cursor,
    etag,
    matches,
)

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_RESPONSES)

UserId = Annotated[str, Path(pattern=ID_PATTERN, description="A user id (a UUIDv7)")]
# The body holds personal data: browsers may keep it, shared caches may not.
CACHE_CONTROL = f"private, max-age={store.CACHE_SECONDS}"
_HEADER = {"schema": {"type": "string"}, "required": True}
_VALIDATORS: dict[str, Any] = {"ETag": _HEADER}


def _allow(claims: Claims, permission: str, user_id: str) -> None:
    if not (claims.can(permission) or claims.sub == user_id):
        raise Forbidden("Missing permission", [permission])


def _announce(background: BackgroundTasks, user_id: str) -> None:
    # After the response: the client does not wait for the broker, and an event
    # the broker cannot take now stays in the outbox for the sweeper.
    background.add_task(outbox.flush, function, store.collection(), user_id)


@router.post(
    "",
    status_code=201,
    responses={
        201: {"headers": {**_VALIDATORS, "Location": _HEADER}},
        **openapi_responses(409),
    },
)
async def create_user(
    new: NewUser,
    response: Response,
    background: BackgroundTasks,
    _: Annotated[Claims, Depends(require("user:create"))],
) -> User:
    """Create a user. Needs `user:create`. Publishes `kshop.user.created`."""
    user = await store.create(new)
    _announce(background, user.id)
    response.headers["location"] = f"{router.prefix}/{user.id}"
    response.headers["etag"] = etag(user)
    return user


@router.get("")
async def list_users(
    _: Annotated[Claims, Depends(require("user:list"))],
    limit: Annotated[int, Query(ge=1, le=100, description="Users per page")] = 20,
    cursor_: Annotated[
        str | None,
        Query(alias="cursor", max_length=64, description="`nextCursor` of the previous page"),
    ] = None,
) -> UserPage:
    """List users, oldest first, a page at a time. Needs `user:list`."""
    try:
        last = after(cursor_) if cursor_ is not None else None
    except ValueError as exc:
        raise BadRequest("Validation failed", [{"field": "cursor", "message": str(exc)}]) from None
    users, more = await store.page(last, limit)
    return UserPage(items=users, next_cursor=cursor(more) if more else None)


@router.get(
    "/{user_id}",
    response_model=User,
    responses={
        200: {"headers": {**_VALIDATORS, "Cache-Control": _HEADER}},
        304: {"description": "Not modified: the If-None-Match tag is current"},
        **openapi_responses(404),
    },
)
async def read_user(
    user_id: UserId,
    claims: Annotated[Claims, Depends(authenticate)],
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """Read a user. Needs `user:read`, or to be that user."""
    _allow(claims, "user:read", user_id)
    user = await store.get(user_id)
    tag = etag(user)
    headers = {"etag": tag, "cache-control": CACHE_CONTROL, "vary": "Authorization"}
    if if_none_match is not None and matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(user.model_dump(mode="json"), headers=headers)


@router.patch(
    "/{user_id}",
    responses={200: {"headers": _VALIDATORS}, **openapi_responses(404, 409)},
)
async def update_user(
    user_id: UserId,
    changes: UserChanges,
    response: Response,
    background: BackgroundTasks,
    claims: Annotated[Claims, Depends(authenticate)],
) -> User:
    """Change a user's name or email. Needs `user:update`, or to be that user.

    Publishes `kshop.user.updated` with the fields that changed, if any did.
    """
    _allow(claims, "user:update", user_id)
    user = await store.update(user_id, changes)
    _announce(background, user_id)
    response.headers["etag"] = etag(user)
    return user


@router.delete(
    "/{user_id}",
    status_code=204,
    response_class=Response,
    responses=openapi_responses(404),
)
async def delete_user(
    user_id: UserId,
    background: BackgroundTasks,
    _: Annotated[Claims, Depends(require("user:delete"))],
) -> Response:
    """Delete a user and their personal data. Needs `user:delete`.

    Publishes `kshop.user.deleted`, which carries the id only.
    """
    await store.delete(user_id)
    _announce(background, user_id)
    return Response(status_code=204)
