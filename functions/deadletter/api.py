"""The dead-letter store's HTTP API: look at failed events, replay them, clear them."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator

from functions.deadletter import query as filters
from functions.deadletter import replay, store
from functions.deadletter.models import DeadLetter, DeadLetterDetail, Page, Purged
from functions.runtime.auth import AUTH_RESPONSES, Claims, require
from functions.runtime.errors import BadRequest, NotFound, Unavailable, openapi_responses

router = APIRouter(prefix="/deadletter", tags=["deadletter"], responses=AUTH_RESPONSES)


# Checked here, so that a time MongoDB cannot hold is a 400 that names its parameter.
Instant = Annotated[datetime, AfterValidator(filters.utc)]


def _where(
    type: Annotated[
        str | None,
        Query(
            pattern=filters.TYPE_PATTERN,
            description='An event type, or a prefix ending in "*" (and no other "*")',
        ),
    ] = None,
    source: Annotated[str | None, Query(description="An event source")] = None,
    code: Annotated[
        int | None, Query(ge=100, le=599, description="The HTTP status that failed it")
    ] = None,
    status: Annotated[filters.Status | None, Query()] = None,
    since: Annotated[
        Instant | None, Query(description="Stored at or after (ISO 8601; UTC if no offset)")
    ] = None,
    until: Annotated[Instant | None, Query(description="Stored before")] = None,
) -> filters.Query:
    return filters.Query(type, source, code, status, since, until)


async def _found(id: str) -> store.Document:
    document = await store.get(id)
    if document is None:
        raise NotFound(f"No dead letter {id!r}")
    return document


@router.get("/events", response_model=Page)
async def list_letters(
    _: Annotated[Claims, Depends(require("dlq:read"))],
    where: Annotated[filters.Query, Depends(_where)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
) -> Page:
    """Dead letters, newest first."""
    after = store.Cursor.parse(cursor) if cursor else None
    documents, next_page = await store.page(where, limit, after)
    return Page(
        items=[DeadLetter.of(d) for d in documents],
        next=next_page.token() if next_page else None,
    )


@router.get("/events/{id}", response_model=DeadLetterDetail, responses=openapi_responses(404))
async def get_letter(
    id: str, _: Annotated[Claims, Depends(require("dlq:read"))]
) -> DeadLetterDetail:
    """One dead letter, with its original event."""
    return DeadLetterDetail.of(await _found(id))


@router.post(
    "/events/{id}/replay", response_model=DeadLetter, responses=openapi_responses(404, 503)
)
async def replay_letter(
    id: str, _: Annotated[Claims, Depends(require("dlq:replay"))]
) -> DeadLetter:
    """Send the original event to the broker again and record the outcome.

    The broker's answer is in the last entry of `replays`; an accepted replay
    marks the letter `replayed`. If the event fails again, it comes back as a
    new dead letter. Replaying twice is allowed: consumers are idempotent.
    """
    outcome = await replay.send(await _found(id))
    updated = await store.record_replay(id, outcome, replay.accepted(outcome))
    if updated is None:
        raise NotFound(f"No dead letter {id!r}: it was deleted during the replay")
    if outcome["status"] is None:
        raise Unavailable("The broker is unreachable; the attempt is recorded", [outcome["error"]])
    return DeadLetter.of(updated)


@router.delete("/events/{id}", status_code=204, responses=openapi_responses(404))
async def delete_letter(id: str, _: Annotated[Claims, Depends(require("dlq:delete"))]) -> Response:
    if not await store.delete(id):
        raise NotFound(f"No dead letter {id!r}")
    return Response(status_code=204)


@router.delete("/events", response_model=Purged, responses=openapi_responses(400))
async def purge_letters(
    _: Annotated[Claims, Depends(require("dlq:delete"))],
    where: Annotated[filters.Query, Depends(_where)],
    all: Annotated[bool, Query(description="Needed to purge with no filter")] = False,
) -> Purged:
    """Delete every dead letter that matches the filter."""
    if where.empty() and not all:
        raise BadRequest("Give a filter, or all=true to purge every dead letter")
    return Purged(deleted=await store.purge(where))
