"""What an outbox entry holds, before any database sees it."""

import re

from functions.runtime import EventData, outbox


class Shipped(EventData, type="kshop.outboxunit.shipped"):
    order_id: str
    parcel_count: int


def test_an_entry_carries_a_fixed_id_the_type_and_camel_case_data() -> None:
    first = outbox.entry(Shipped(order_id="o1", parcel_count=2), subject="o1")
    second = outbox.entry(Shipped(order_id="o1", parcel_count=2), subject="o1")
    assert re.fullmatch(r"[0-9a-f-]{36}", first["id"])
    assert first["id"] != second["id"]  # two writes are two events
    assert first["type"] == "kshop.outboxunit.shipped"
    assert first["subject"] == "o1"
    assert first["data"] == {"orderId": "o1", "parcelCount": 2}


def test_times_have_mongodbs_millisecond_precision() -> None:
    assert outbox.now().microsecond % 1000 == 0
    assert outbox.entry(Shipped(order_id="o", parcel_count=1))["time"].microsecond % 1000 == 0
