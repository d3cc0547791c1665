import hashlib
import json
from datetime import datetime
from typing import Annotated, Any

import uuid_utils
from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from functions.inventory import store as catalogue
from functions.inventory.api import SKU_PATTERN
from functions.orders import main, store
from functions.orders.events import CancelReason, OrderLine
from functions.orders.machine import Fact, Illegal, Status
from functions.runtime import BadRequest, Conflict, NotFound, outbox
from functions.runtime.auth import AUTH_RESPONSES, Claims, authenticate, require
from functions.runtime.errors import openapi_responses
from functions.saga import OneLinePerSku, PaymentToken, Quantity

router = APIRouter(prefix="/orders", tags=["orders"], responses=AUTH_RESPONSES)

MAX_ITEMS = 25
MAX_QUANTITY = 100
ADMIN = "orders:admin"
OrderId = Annotated[str, Path(pattern=r"^ord_[0-9a-f]{32}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True)


class _Out(BaseModel):
    """A view of a stored document: the fields it shows, whatever else is stored."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, validate_by_name=True)


class NewLine(_Body):
    sku: str = Field(pattern=SKU_PATTERN)
    quantity: Annotated[Quantity, Field(le=MAX_QUANTITY)]


class NewOrder(_Body):
    items: Annotated[list[NewLine], Field(min_length=1, max_length=MAX_ITEMS), OneLinePerSku]
    payment_token: PaymentToken = Field(
        description="The gateway's token for the customer's card; card data never reaches kshop.",
    )


class Step(_Out):
    status: Status
    reason: CancelReason | None
    fact: Fact | None
    at: datetime


class Saga(_Out):
    inventory: str
    payment: str
    shipment: str


class Order(_Out):
    id: str
    user_id: str
    status: Status
    cancel_reason: CancelReason | None = None
    items: list[OrderLine]
    total_cents: int
    currency: str
    deadline: datetime
    saga: Saga
    payment: dict[str, Any] | None = None
    shipment: dict[str, Any] | None = None
    history: list[Step] | None = None
    created_at: datetime
    updated_at: datetime


def _order(document: dict[str, Any]) -> Order:
    return Order.model_validate({**document, "id": document["_id"]})


def _visible(order: dict[str, Any], claims: Claims) -> dict[str, Any]:
    # Another customer's order answers as if it did not exist: ids are not probed.
    if order["userId"] != claims.sub and not claims.can(ADMIN):
        raise NotFound("No such order", [{"id": order["_id"]}])
    return order


def _request_hash(order: NewOrder) -> str:
    canonical = json.dumps(order.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _order_id(user_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"ord_{uuid_utils.uuid7().hex}"
    # The same customer and key always name the same order: a retried POST finds it.
    digest = hashlib.sha256(f"{user_id}\0{idempotency_key}".encode()).hexdigest()
    return f"ord_{digest[:32]}"


async def _priced(lines: list[NewLine]) -> list[OrderLine]:
    prices = await catalogue.quote([line.sku for line in lines])
    unknown = [line.sku for line in lines if line.sku not in prices]
    if unknown:
        raise BadRequest(
            "Validation failed",
            [{"field": "items", "message": f"unknown SKU {sku}"} for sku in unknown],
        )
    return [
        OrderLine(
            sku=line.sku,
            name=prices[line.sku]["name"],
            quantity=line.quantity,
            unit_price_cents=prices[line.sku]["priceCents"],
        )
        for line in lines
    ]


@router.post("", status_code=201, response_model_by_alias=True, responses=openapi_responses(409))
async def place_order(
    body: NewOrder,
    claims: Annotated[Claims, Depends(require("orders:create"))],
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retries with the same key return the same order",
        ),
    ] = None,
) -> Order:
    """Place an order at catalogue prices (`orders:create`). The saga starts at once."""
    order_id = _order_id(claims.sub, idempotency_key)
    lines = await _priced(body.items)
    order, new = await store.place(
        order_id, claims.sub, lines, catalogue.CURRENCY, body.payment_token, _request_hash(body)
    )
    # A replay flushes too: the first request may have died before its event left.
    await outbox.flush(main.function, store.orders(), order_id)
    response.headers["location"] = f"/orders/{order_id}"
    if not new:
        response.headers["idempotent-replayed"] = "true"
    return _order(order)


@router.get("/{order_id}", response_model_by_alias=True, responses=openapi_responses(404))
async def get_order(order_id: OrderId, claims: Annotated[Claims, Depends(authenticate)]) -> Order:
    """The order with its status history and saga progress (its owner, or `orders:admin`)."""
    return _order(_visible(await store.get(order_id), claims))


@router.get("", response_model_by_alias=True, response_model_exclude_none=True)
async def list_orders(
    _: Annotated[Claims, Depends(require(ADMIN))],
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(pattern=r"^ord_[0-9a-f]{32}$")] = None,
) -> list[Order]:
    """Orders by id, optionally of one status (`orders:admin`). Page with `after`."""
    return [_order(d) for d in await store.page(status, limit, after)]


@router.post(
    "/{order_id}/cancel", response_model_by_alias=True, responses=openapi_responses(404, 409)
)
async def cancel_order(
    order_id: OrderId, claims: Annotated[Claims, Depends(authenticate)]
) -> Order:
    """Cancel an order before it is paid (its owner, or `orders:admin`). Twice is fine."""
    _visible(await store.get(order_id), claims)
    order, decision = await main.advance(order_id, Fact.CANCEL)
    if isinstance(decision, Illegal):
        raise Conflict(decision.why, [{"id": order_id, "status": order["status"]}])
    return _order(order)
