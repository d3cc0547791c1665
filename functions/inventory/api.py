from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

from functions.inventory import restock, store
from functions.names import DisplayName
from functions.runtime.auth import AUTH_RESPONSES, Claims, require
from functions.runtime.errors import openapi_responses
from functions.runtime.settings import settings
from functions.saga import Cents, OneLinePerSku, Quantity

router = APIRouter(prefix="/products", tags=["inventory"])

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_BULK = 500
Sku = Annotated[str, Path(pattern=SKU_PATTERN)]
Writer = Annotated[Claims, Depends(require("inventory:write"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True)


class NewProduct(_Body):
    sku: str = Field(pattern=SKU_PATTERN)
    name: Annotated[str, DisplayName(min_length=1, max_length=200)]
    price_cents: Annotated[Cents, Field(le=100_000_000)]
    available: Annotated[int, Strict(), Field(ge=0, le=store.MAX_STOCK)] = 0


class Restock(_Body):
    quantity: Annotated[Quantity, Field(le=store.MAX_STOCK)]


class RestockLine(Restock):
    sku: str = Field(pattern=SKU_PATTERN)


class BulkRestock(_Body):
    items: Annotated[list[RestockLine], Field(min_length=1, max_length=MAX_BULK), OneLinePerSku]


class Product(_Body):
    sku: str
    name: str
    price_cents: int
    currency: str
    available: int
    reserved: int
    shipped: int


class RestockResult(_Body):
    sku: str
    quantity: int
    status: int = Field(description="what this item alone would have answered")
    product: Product | None = None
    error: str | None = None


class BulkRestockReport(_Body):
    restocked: int
    failed: int
    results: list[RestockResult]


def _product(document: dict[str, Any]) -> Product:
    return Product(
        sku=document["_id"],
        name=document["name"],
        price_cents=document["priceCents"],
        currency=store.CURRENCY,
        available=document["available"],
        reserved=document["reserved"],
        shipped=document["shipped"],
    )


@router.post(
    "",
    status_code=201,
    response_model_by_alias=True,
    responses=AUTH_RESPONSES | openapi_responses(409),
)
async def create_product(product: NewProduct, _: Writer, response: Response) -> Product:
    """Add a product to the catalogue (`inventory:write`)."""
    document = await store.create(product.sku, product.name, product.price_cents, product.available)
    response.headers["location"] = f"/products/{product.sku}"
    return _product(document)


@router.get("", response_model_by_alias=True)
async def list_products(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None, Query(pattern=SKU_PATTERN, description="the last SKU seen")
    ] = None,
) -> list[Product]:
    """The catalogue in SKU order, a page at a time. Public: prices are no secret."""
    return [_product(d) for d in await store.page(limit, after)]


@router.get("/{sku}", response_model_by_alias=True, responses=openapi_responses(404))
async def get_product(sku: Sku) -> Product:
    return _product(await store.get(sku))


@router.post(
    "/{sku}/restock",
    response_model_by_alias=True,
    responses=AUTH_RESPONSES | openapi_responses(404, 409),
)
async def restock_product(sku: Sku, body: Restock, _: Writer) -> Product:
    """Add stock to one product (`inventory:write`)."""
    return _product(await store.restock(sku, body.quantity))


@router.post(
    "/restock",
    response_model_by_alias=True,
    responses={
        **AUTH_RESPONSES,
        207: {"description": "Some items failed; each result says which and why"},
    },
)
async def bulk_restock(body: BulkRestock, _: Writer, response: Response) -> BulkRestockReport:
    """Restock many products in parallel (`inventory:write`).

    Items are independent: 200 when all succeeded, 207 when some failed.
    """
    outcomes = await restock.run_all(
        [(line.sku, line.quantity) for line in body.items],
        store.restock,
        settings().inventory_restock_concurrency,
    )
    results = [
        RestockResult(
            sku=o.sku,
            quantity=o.quantity,
            status=o.status,
            product=_product(o.product) if o.product else None,
            error=o.error,
        )
        for o in outcomes
    ]
    failed = sum(1 for o in outcomes if o.error is not None)
    if failed:
        response.status_code = 207
    return BulkRestockReport(restocked=len(results) - failed, failed=failed, results=results)
