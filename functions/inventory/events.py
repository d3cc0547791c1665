"""What the inventory function announces. Consumers: payments, orders, analytics."""

from pydantic import Field

from functions.runtime import EventData
from functions.saga import Cents, Currency, PaymentToken


class InventoryReserved(EventData, type="kshop.inventory.reserved"):
    """Every item of the order is held.

    It carries what payments needs to charge, so payments never reads the order.
    """

    order_id: str
    user_id: str
    total_cents: Cents
    currency: Currency
    payment_token: PaymentToken


class InventoryRejected(EventData, type="kshop.inventory.rejected"):
    """Not every item was in stock, so none is held."""

    order_id: str
    user_id: str
    short_skus: tuple[str, ...] = Field(min_length=1)


class InventoryReleased(EventData, type="kshop.inventory.released"):
    """The order's held items are back in stock."""

    order_id: str
    user_id: str
