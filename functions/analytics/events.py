from datetime import date

from functions.runtime import EventData


class MilestoneReached(EventData, type="kshop.analytics.milestone.reached"):
    """A daily count of one event type reached a round number (1, 10, 100, ...)."""

    day: date
    counted_type: str
    count: int
