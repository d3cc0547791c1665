"""What the users function announces. Consumers: notifications, analytics."""

from functions.runtime import EventData


class UserCreated(EventData, type="kshop.user.created"):
    """A user signed up; the welcome email goes to `email`."""

    id: str
    name: str
    email: str


class UserUpdated(EventData, type="kshop.user.updated"):
    """Only the fields that changed are set."""

    id: str
    name: str | None = None
    email: str | None = None


class UserDeleted(EventData, type="kshop.user.deleted"):
    """Carries the id alone: the personal data is gone, and must not live on in events."""

    id: str
