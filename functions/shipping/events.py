"""What the shipping function announces. Consumers: orders, inventory, analytics."""

from datetime import date

from functions.runtime import EventData


class ShipmentCreated(EventData, type="kshop.shipment.created"):
    """A carrier has the parcel of a paid order."""

    order_id: str
    user_id: str
    carrier: str
    tracking_number: str
    eta: date
