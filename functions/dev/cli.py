"""`kshop`: run every function locally and talk to them: events, tokens, mail, dead letters.

Each command imports what it needs: the servers' drivers for `kshop dev`, PyJWT
for `kshop token`, httpx and the CloudEvents SDK for `kshop send`, httpx for
`kshop dlq`. At the top they would make every command start slowly: httpx alone
takes ~0.4 s, as it loads its own CLI when rich is installed.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from functions.deadletter.query import Query, Status
from functions.dev import dlq as dead_letters
from functions.dev import endpoints

app = typer.Typer(
    name="kshop",
    help="Run kshop on this machine and talk to it: events, tokens, mail and dead letters.",
    no_args_is_help=True,
    add_completion=False,
)
mail_app = typer.Typer(help="The mail that the local SMTP server of `kshop dev` kept.")
dlq_app = typer.Typer(
    help="The dead-letter store: failed events, and their replay.", no_args_is_help=True
)
app.add_typer(mail_app, name="mail")
app.add_typer(dlq_app, name="dlq")


def fail(message: str) -> NoReturn:
    typer.echo(f"kshop: {message}", err=True)
    raise typer.Exit(1)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command()
def dev(
    only: Annotated[
        str, typer.Option(help="Run these functions only, e.g. users,orders.", show_default=False)
    ] = "",
    port: Annotated[int, typer.Option(help="The broker's port; 0 for any free one.")] = 8080,
    base_port: Annotated[
        int,
        typer.Option(help="The first function's port, the others after it; 0 for any free ones."),
    ] = 8101,
) -> None:
    """Run every function, the broker, Redis, MongoDB and SMTP until Ctrl-C."""
    from functions.dev import stack  # the servers' drivers load only for this command
    from functions.dev.services import ServiceError

    try:
        stack.run(stack.Options(_csv(only), port, base_port))
    except (stack.DevError, ServiceError) as exc:
        fail(str(exc))


def _read_data(data: str | None, data_file: str | None) -> Any:
    from functions.dev import sending

    if data is not None and data_file is not None:
        fail("give --data or --data-file, not both")
    if data == "-" or data_file == "-":
        return sending.parse_data(sys.stdin.read(), "stdin")
    if data_file is not None:
        try:
            text = Path(data_file).read_text()
        except OSError as exc:
            fail(f"--data-file: {exc}")
        return sending.parse_data(text, data_file)
    return None if data is None else sending.parse_data(data, "--data")


@app.command()
def send(
    type: Annotated[str, typer.Argument(help="The event type, e.g. kshop.user.created.")],
    source: Annotated[str, typer.Option(help="The event source.")] = "/kshop/cli",
    id: Annotated[
        str | None, typer.Option("--id", help="The event id (default: a new UUID).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="The event subject.")] = None,
    data: Annotated[
        str | None, typer.Option(help="The data, as JSON; - reads it from stdin.")
    ] = None,
    data_file: Annotated[
        str | None, typer.Option(help="A file holding the data as JSON; - is stdin.")
    ] = None,
    ext: Annotated[
        list[str] | None,
        typer.Option(help="An extension attribute, name=value; repeat for more."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(help="Where to POST (default: the broker of `kshop dev`, else :8080)."),
    ] = None,
    structured: Annotated[
        bool, typer.Option(help="Send in structured mode instead of binary.")
    ] = False,
) -> None:
    """Build a CloudEvent, check it, send it, and print the answer."""
    import httpx

    from functions.dev import sending

    try:
        event = sending.build(
            type,
            source,
            id or str(uuid.uuid4()),
            subject,
            _read_data(data, data_file),
            sending.extensions(ext or []),
        )
        headers, body = sending.encode(event, structured)
    except sending.InvalidEvent as exc:
        fail(f"invalid event: {exc}")
    url = to or endpoints.broker_url()
    mode = "structured" if structured else "binary"
    typer.echo(f"{event.get_type()} id={event.get_id()} -> {url} ({mode})")
    try:
        answer = sending.send(url, headers, body)
    except httpx.HTTPError as exc:
        fail(f"{url}: {exc}")
    typer.echo(answer.describe())
    if answer.status >= 300:
        raise typer.Exit(1)


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="Who the token is for (the `sub` claim).")],
    permissions: Annotated[
        str, typer.Option(help="Comma-separated, e.g. analytics:read,dlq:read.")
    ] = "",
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires.")] = 3600,
) -> None:
    """Print a bearer token signed with the dev key (JWT_SECRET, else the kshop dev default)."""
    from pydantic import ValidationError

    from functions.dev import tokens
    from functions.runtime.settings import explain

    try:
        typer.echo(tokens.mint(sub, _csv(permissions), ttl))
    except ValidationError as exc:
        fail(f"invalid environment: {explain(exc)}")
    except ValueError as exc:
        fail(str(exc))


@app.command()
def catalogue() -> None:
    """Print the event catalogue (AsyncAPI 3.0, YAML): every type, its schema, who sends
    and who receives it, generated from the models and the Triggers."""
    import yaml

    from functions.dev.catalogue import asyncapi

    typer.echo(yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True), nl=False)


MailDir = Annotated[
    Path | None, typer.Option("--dir", help="The mail directory (default: that of kshop dev).")
]


@mail_app.callback(invoke_without_command=True)
def mail(ctx: typer.Context, directory: MailDir = None) -> None:
    """List the kept mail; `kshop mail show N` shows one."""
    from functions.dev import mailbox

    ctx.obj = directory or endpoints.mail_directory()
    if ctx.invoked_subcommand is None:
        typer.echo(mailbox.listing(ctx.obj))


@mail_app.command("list")
def mail_list(ctx: typer.Context) -> None:
    """To, subject and time of every message, oldest first."""
    from functions.dev import mailbox

    typer.echo(mailbox.listing(ctx.obj))


@mail_app.command("show")
def mail_show(
    ctx: typer.Context, number: Annotated[int, typer.Argument(help="N from `kshop mail list`.")]
) -> None:
    """One message: its headers and text."""
    from functions.dev import mailbox

    try:
        typer.echo(mailbox.show(mailbox.message(ctx.obj, number)))
    except IndexError as exc:
        fail(str(exc))


@dlq_app.callback()
def dlq(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(help="The deadletter function (default: that of kshop dev)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KSHOP_TOKEN", help="A bearer token (default: minted with the dev key)."
        ),
    ] = None,
) -> None:
    """Failed events: list, show, replay, delete and purge them."""
    ctx.obj = (url, token)


def _client(ctx: typer.Context) -> dead_letters.Client:
    # Resolved here, not in the group's callback, which runs before a command's --help.
    from pydantic import ValidationError

    from functions.dev import tokens

    url, token = ctx.obj
    if url is None:
        running = endpoints.Endpoints.load()
        url = running.functions.get("deadletter") if running else None
    if url is None:
        fail("where is the deadletter function? Start `kshop dev`, or pass --url")
    try:
        return dead_letters.Client(
            url, token or tokens.mint("kshop-cli", dead_letters.PERMISSIONS, ttl=300)
        )
    except (ValidationError, ValueError) as exc:
        fail(f"cannot mint a token ({exc}); pass --token")


def _filter(
    type: str | None,
    source: str | None,
    code: int | None,
    status: Status | None,
    since: str | None,
    until: str | None,
) -> Query:
    try:
        return Query(
            type,
            source,
            code,
            status,
            dead_letters.when(since) if since else None,
            dead_letters.when(until) if until else None,
        )
    except dead_letters.DeadLetterError as exc:
        fail(str(exc))


TypeOption = Annotated[
    str | None, typer.Option("--type", help='An event type, or a prefix ending in "*".')
]
SourceOption = Annotated[str | None, typer.Option(help="An event source.")]
CodeOption = Annotated[int | None, typer.Option(help="The HTTP status that failed it.")]
StatusOption = Annotated[Status | None, typer.Option(help="Only those failed, or replayed.")]
SinceOption = Annotated[
    str | None, typer.Option(help="Stored since: a time (ISO 8601, UTC) or an age (10m, 2h, 7d).")
]
UntilOption = Annotated[str | None, typer.Option(help="Stored before: a time or an age.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    type: TypeOption = None,
    source: SourceOption = None,
    code: CodeOption = None,
    status: StatusOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Where the previous page ended.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Dead letters, newest first."""
    where = _filter(type, source, code, status, since, until)
    try:
        page = _client(ctx).list(where, limit, cursor)
    except dead_letters.DeadLetterError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    typer.echo(dead_letters.listing(page["items"]) if page["items"] else "No dead letters.")
    if page["next"]:
        typer.echo(f"More: kshop dlq list --cursor {page['next']}")


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Its ID.")]) -> None:
    """One dead letter: the error, every replay, and the original event."""
    try:
        typer.echo(json.dumps(_client(ctx).show(id), indent=2))
    except dead_letters.DeadLetterError as exc:
        fail(str(exc))


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context, ids: Annotated[list[str], typer.Argument(help="Their IDs.")]
) -> None:
    """Send each original event to the broker again, with its id and traceparent."""
    all_taken = True
    for id in ids:
        try:
            taken, line = dead_letters.replayed(_client(ctx).replay(id))
        except dead_letters.DeadLetterError as exc:
            taken, line = False, f"{id}: {exc}"
        all_taken &= taken
        typer.echo(line, err=not taken)
    if not all_taken:
        raise typer.Exit(1)


@dlq_app.command("delete")
def dlq_delete(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Its ID.")]) -> None:
    """Delete one dead letter."""
    try:
        _client(ctx).delete(id)
    except dead_letters.DeadLetterError as exc:
        fail(str(exc))
    typer.echo(f"{id}: deleted")


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    type: TypeOption = None,
    source: SourceOption = None,
    code: CodeOption = None,
    status: StatusOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    everything: Annotated[bool, typer.Option("--all", help="Purge with no filter.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete every dead letter that matches the filter."""
    where = _filter(type, source, code, status, since, until)
    if where.empty() and not everything:
        fail("give a filter (--type, --code, ...) or --all")
    if not yes:
        typer.confirm(
            f"Delete the dead letters matching {where.params() or 'anything'}?", abort=True
        )
    try:
        deleted = _client(ctx).purge(where, everything)
    except dead_letters.DeadLetterError as exc:
        fail(str(exc))
    typer.echo(f"deleted {deleted}")


def main() -> None:
    app()
