"""What the payments function announces. Consumers: orders, shipping, inventory, analytics."""

from functions.runtime import EventData
from functions.saga import Cents, Currency


class PaymentSucceeded(EventData, type="kshop.payment.succeeded"):
    """The order is charged: the saga's pivot. From here it only moves forward."""

    order_id: str
    user_id: str
    amount_cents: Cents
    currency: Currency
    payment_id: str


class PaymentFailed(EventData, type="kshop.payment.failed"):
    """The gateway declined the charge; nothing was taken."""

    order_id: str
    user_id: str
    code: str


class PaymentRefunded(EventData, type="kshop.payment.refunded"):
    """A charge for an order that was cancelled anyway was paid back in full."""

    order_id: str
    user_id: str
    amount_cents: Cents
    currency: Currency
    refund_id: str
