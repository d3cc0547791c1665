"""users: people's accounts over HTTP, each change announced as an event."""

from functions.runtime import Function, outbox
from functions.users import store
from functions.users.events import UserCreated, UserDeleted, UserUpdated

function = Function(
    "users",
    uses={"mongo", "redis"},
    api="functions.users.api:router",
    emits=[UserCreated, UserUpdated, UserDeleted],
)
function.on_startup(store.create_indexes)
outbox.install(function, store.COLLECTION)
