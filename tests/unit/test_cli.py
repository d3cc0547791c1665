"""The `kshop` CLI's own logic: building and checking events, tokens, mail, filters, logs."""

import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click import unstyle
from typer.testing import CliRunner

from functions.deadletter.query import Query
from functions.dev import dlq, endpoints, logview, sending, stack, tokens
from functions.dev.cli import app
from functions.dev.endpoints import Endpoints
from functions.dev.services import free_port
from functions.dev.supervisor import Backoff
from functions.runtime import bearer, codec
from functions.runtime.settings import Settings
from functions.topology import load

runner = CliRunner()
# Nothing listens there: a command that gets this far has sent its request.
NOWHERE = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in an empty directory, with no kshop settings from the caller's shell."""
    monkeypatch.chdir(tmp_path)
    for name in ("JWT_SECRET", "JWT_ALGORITHMS", "KSHOP_TOKEN"):
        monkeypatch.delenv(name, raising=False)


# --- kshop send ------------------------------------------------------------------------


def test_an_event_is_encoded_in_binary_mode_with_json_data() -> None:
    event = sending.build(
        "kshop.user.created", "/kshop/cli", "e-1", "u-1", {"id": "u-1"}, {"tenant": "blue"}
    )
    headers, body = sending.encode(event, structured=False)
    assert headers["ce-type"] == "kshop.user.created"
    assert headers["ce-source"] == "/kshop/cli"
    assert headers["ce-id"] == "e-1"
    assert headers["ce-subject"] == "u-1"
    assert headers["ce-tenant"] == "blue"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"id": "u-1"}


def test_an_event_is_encoded_in_structured_mode() -> None:
    event = sending.build("kshop.user.created", "/kshop/cli", "e-1", data=[1, 2])
    headers, body = sending.encode(event, structured=True)
    assert headers["content-type"].startswith(codec.STRUCTURED)
    document = json.loads(body)
    assert (document["type"], document["id"], document["data"]) == (
        "kshop.user.created",
        "e-1",
        [1, 2],
    )


def test_an_event_without_data_has_no_body_and_no_content_type() -> None:
    headers, body = sending.encode(sending.build("kshop.x.y", "/s", "1"), structured=False)
    assert body == b""
    assert "content-type" not in headers


def test_a_time_extension_must_be_a_timestamp() -> None:
    event = sending.build("kshop.x.y", "/s", "1", extra={"time": "2026-05-01T10:00:00Z"})
    assert event.get_time() == datetime(2026, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(sending.InvalidEvent, match="RFC 3339"):
        sending.build("kshop.x.y", "/s", "1", extra={"time": "yesterday"})


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        ("tenant", "name=value"),
        ("Tenant=blue", "lower-case letters and digits"),
        ("ten_ant=blue", "lower-case letters and digits"),
        ("id=7", "option of its own"),
        ("datacontenttype=text/plain", "option of its own"),
    ],
)
def test_bad_extensions_are_refused(pair: str, reason: str) -> None:
    with pytest.raises(sending.InvalidEvent, match=reason):
        sending.extensions([pair])


def test_an_extension_given_twice_is_refused() -> None:
    assert sending.extensions(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(sending.InvalidEvent, match="twice"):
        sending.extensions(["a=1", "a=2"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{bad"], "--data is not JSON"),
        (["--data", "{}", "--data-file", "x.json"], "not both"),
        (["--data-file", "missing.json"], "--data-file"),
        (["--ext", "Bad=1"], "lower-case"),
        (["--source", ""], "invalid event"),
    ],
)
def test_send_refuses_an_invalid_event_before_sending(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["send", "kshop.user.created", "--to", NOWHERE, *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "->" not in result.output  # nothing was sent


def test_send_makes_a_new_uuid_for_each_event() -> None:
    ids = [
        runner.invoke(app, ["send", "kshop.user.created", "--to", NOWHERE]).output.split()[1]
        for _ in range(2)
    ]
    assert ids[0] != ids[1]
    assert all(uuid.UUID(i.removeprefix("id=")) for i in ids)


def test_the_broker_is_that_of_kshop_dev_else_the_default() -> None:
    assert (
        endpoints.broker_url()
        == endpoints.DEFAULT_BROKER
        == "http://localhost:8080/default/default"
    )
    Endpoints("http://127.0.0.1:18080/default/default", {}, "", "", "", "", os.getpid()).save()
    assert endpoints.broker_url() == "http://127.0.0.1:18080/default/default"


def test_send_goes_to_the_broker_of_a_running_kshop_dev() -> None:
    where = Endpoints("http://127.0.0.1:9/default/default", {}, "", "", "", "", os.getpid())
    where.save()
    result = runner.invoke(app, ["send", "kshop.user.created", "--data-file", "-"], input="{}")
    assert "-> http://127.0.0.1:9/default/default (binary)" in result.output


def test_a_reply_is_shown_as_a_structured_event() -> None:
    reply = sending.build("kshop.x.replied", "/kshop/x", "r-1", data={"ok": True})
    _, body = codec.encode(reply)
    answer = sending.Answer(200, "OK", reply, body)
    shown = answer.describe().splitlines()
    assert shown[0] == "200 OK"
    document = json.loads("\n".join(shown[1:]))
    assert (document["type"], document["data"]) == ("kshop.x.replied", {"ok": True})


def test_an_error_body_is_shown_as_json() -> None:
    body = b'{"error":"Bad request","details":[],"requestId":"1"}'
    shown = sending.Answer(400, "Bad Request", None, body).describe()
    assert shown.startswith("400 Bad Request\n{\n")
    assert '"error": "Bad request"' in shown


# --- kshop token -----------------------------------------------------------------------


def test_token_is_signed_with_the_dev_key_by_default() -> None:
    result = runner.invoke(
        app, ["token", "--sub", "ada", "--permissions", "dlq:read, analytics:read", "--ttl", "60"]
    )
    assert result.exit_code == 0, result.output
    claims = bearer.verify(result.output.strip(), Settings(jwt_secret=tokens.DEV_JWT_SECRET))
    assert claims.sub == "ada"
    assert claims.permissions == {"dlq:read", "analytics:read"}
    assert claims.raw["exp"] - claims.raw["iat"] == 60


def test_token_is_signed_with_jwt_secret_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "my-own-secret-of-thirty-two-bytes!")
    token = runner.invoke(app, ["token", "--sub", "ada"]).output.strip()
    assert (
        bearer.verify(token, Settings(jwt_secret="my-own-secret-of-thirty-two-bytes!")).sub == "ada"
    )


def test_token_says_what_is_wrong_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256")
    result = runner.invoke(app, ["token", "--sub", "ada"])
    assert result.exit_code == 1
    assert "JWT_PRIVATE_KEY" in result.output


# --- kshop mail ------------------------------------------------------------------------


def write_mail(directory: Path, n: int, to: str, subject: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    mail = {
        "to": [to],
        "from": "no-reply@kshop.example",
        "subject": subject,
        "date": f"2026-05-01T10:00:0{n}+00:00",
        "text": text,
        "html": None,
        "raw": "",
    }
    (directory / f"{n:020d}-abcd.json").write_text(json.dumps(mail))


def test_mail_lists_every_message_and_shows_one(tmp_path: Path) -> None:
    write_mail(tmp_path / "mail", 1, "ada@example.com", "Welcome", "Hello Ada")
    write_mail(tmp_path / "mail", 2, "bob@example.com", "Your order", "On its way")

    listed = runner.invoke(app, ["mail", "--dir", str(tmp_path / "mail")])
    rows = listed.output.splitlines()
    assert rows[0].split() == ["N", "DATE", "TO", "SUBJECT"]
    assert rows[1].split()[:4] == ["1", "2026-05-01", "10:00:01", "ada@example.com"]
    assert rows[2].endswith("Your order")
    assert (
        runner.invoke(app, ["mail", "--dir", str(tmp_path / "mail"), "list"]).output
        == listed.output
    )

    shown = runner.invoke(app, ["mail", "--dir", str(tmp_path / "mail"), "show", "2"]).output
    assert "To:      bob@example.com" in shown
    assert "Subject: Your order" in shown
    assert shown.rstrip().endswith("On its way")


def test_mail_show_of_a_missing_message_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mail", "--dir", str(tmp_path), "show", "1"])
    assert result.exit_code == 1
    assert "no message 1" in result.output
    assert "No mail" in runner.invoke(app, ["mail"]).output


# --- kshop dlq ---------------------------------------------------------------------------


def test_dlq_needs_kshop_dev_or_a_url() -> None:
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 1
    assert "Start `kshop dev`, or pass --url" in result.output
    assert runner.invoke(app, ["dlq", "list", "--help"]).exit_code == 0


def test_dlq_purge_needs_a_filter_or_all() -> None:
    result = runner.invoke(app, ["dlq", "--url", NOWHERE, "purge", "--yes"])
    assert result.exit_code == 1
    assert "--all" in result.output


def test_dlq_reports_an_unreachable_api() -> None:
    result = runner.invoke(app, ["dlq", "--url", NOWHERE, "list"])
    assert result.exit_code == 1
    assert "unreachable" in result.output


def test_times_are_ages_or_iso_timestamps() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert dlq.when("90s", now) == now - timedelta(seconds=90)
    assert dlq.when("10m", now) == now - timedelta(minutes=10)
    assert dlq.when("2h", now) == now - timedelta(hours=2)
    assert dlq.when("7d", now) == now - timedelta(days=7)
    assert dlq.when("2026-04-30T08:00:00") == datetime(2026, 4, 30, 8, tzinfo=UTC)
    assert dlq.when("2026-04-30T08:00:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(dlq.DeadLetterError):
        dlq.when("last week")


def test_a_filter_sends_only_what_is_given() -> None:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    assert Query(type="kshop.order.*", code=503, since=at).params() == {
        "type": "kshop.order.*",
        "code": "503",
        "since": "2026-05-01T00:00:00+00:00",
    }
    assert Query().params() == {}


def letter(status: int | None, replays: list[int | None]) -> dict[str, object]:
    return {
        "id": "abc123",
        "receivedAt": "2026-05-01T10:00:00.123000Z",
        "type": "kshop.order.created",
        "status": "replayed" if replays else "failed",
        "error": {"code": status, "message": "Service unavailable", "data": None},
        "replays": [
            {"status": s, "target": "http://b/default/default", "error": None} for s in replays
        ],
    }


def test_the_dead_letter_listing_is_one_row_each() -> None:
    rows = dlq.listing([letter(503, []), letter(None, [202, 202])]).splitlines()
    assert rows[0].split() == [
        "ID", "RECEIVED", "(UTC)", "TYPE", "CODE", "STATUS", "REPLAYS", "ERROR"
    ]  # fmt: skip
    assert rows[1].split() == [
        "abc123", "2026-05-01", "10:00:00", "kshop.order.created", "503", "failed", "0",
        "Service", "unavailable",
    ]  # fmt: skip
    assert rows[2].split()[4:7] == ["-", "replayed", "2"]


def test_a_replay_is_taken_only_with_a_2xx() -> None:
    assert dlq.replayed(letter(503, [202])) == (
        True,
        "abc123: replayed to http://b/default/default: 202",
    )
    taken, line = dlq.replayed(letter(503, [400]))
    assert not taken
    assert "refused" in line


def test_without_the_local_extra_the_command_says_what_to_install() -> None:
    # As in an install without the extra: typer cannot be imported.
    probe = "import sys; sys.modules['typer'] = None; from functions.dev import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "needs the 'local' extra, and typer is not installed" in result.stderr
    assert "Traceback" not in result.stderr


# --- kshop dev -------------------------------------------------------------------------


def test_only_runs_a_subset_and_a_function_keeps_its_port() -> None:
    topology = load()
    every = stack.choose(topology, [])
    some = stack.choose(topology, ["deadletter", "analytics"])
    assert list(every) == list(topology.enabled())
    assert set(some) == {"analytics", "deadletter"}
    assert all(some[name] == every[name] for name in some)


def test_only_refuses_a_name_that_is_no_function() -> None:
    with pytest.raises(stack.DevError, match="nonesuch"):
        stack.choose(load(), ["analytics", "nonesuch"])
    result = runner.invoke(app, ["dev", "--only", "nonesuch"])
    assert result.exit_code == 1
    assert "not enabled functions" in result.output


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def test_a_fixed_base_port_gives_each_function_its_offset() -> None:
    chosen = {"analytics": 0, "deadletter": 2}
    base = next(port for port in iter(free_port, None) if _free(port) and _free(port + 2))
    broker, ports = stack.assign_ports(stack.Options(port=0, base_port=base), chosen)
    assert ports == {"analytics": base, "deadletter": base + 2}
    assert broker not in ports.values()


def test_port_zero_lets_the_os_choose_every_port() -> None:
    chosen = stack.choose(load(), [])
    broker, ports = stack.assign_ports(stack.Options(port=0, base_port=0), chosen)
    every = [broker, *ports.values()]
    assert len(set(every)) == len(chosen) + 1
    assert all(port > 0 for port in every)


def test_a_fixed_port_in_use_is_refused_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(stack.DevError, match=f"port {port} is in use"):
            stack.assign_ports(stack.Options(port=port, base_port=0), {"analytics": 0})
        with pytest.raises(stack.DevError, match=f"port {port} is in use"):
            stack.assign_ports(stack.Options(port=0, base_port=port), {"analytics": 0})


def test_a_crashing_function_waits_longer_each_time_until_it_runs_stably() -> None:
    backoff = Backoff(first=0.5, most=4, stable=10)
    delays = [0.5]
    for _ in range(5):
        delays.append(backoff.next(delays[-1], ran_for=1))
    assert delays == [0.5, 1, 2, 4, 4, 4]
    assert backoff.next(4, ran_for=11) == 0.5


def test_the_endpoints_of_a_dead_kshop_dev_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / ".kshop" / "endpoints.json"
    running = Endpoints("b", {"analytics": "a"}, "m", "r", "s", "mail", os.getpid())
    running.save(path)
    assert Endpoints.load(path) == running
    # A pid above the kernel's pid_max belongs to no process.
    Endpoints("b", {}, "m", "r", "s", "mail", 2**22 + 1).save(path)
    assert Endpoints.load(path) is None
    endpoints.remove(path)
    assert Endpoints.load(path) is None


def test_a_function_log_line_is_made_readable() -> None:
    line = json.dumps(
        {
            "time": "2026-05-01T10:00:00.123+00:00",
            "level": "ERROR",
            "logger": "kshop.events",
            "message": "handler failed",
            "function": "orders",
            "ce_id": "e-1",
            "ce_type": "kshop.order.created",
            "exception": "Traceback ...\nValueError: x",
        }
    )
    rendered = logview.render(line).splitlines()
    assert rendered[0].startswith("10:00:00.123 ")
    assert "handler failed  ce_type=kshop.order.created ce_id=e-1" in rendered[0]
    assert rendered[1:] == ["Traceback ...", "ValueError: x"]
    assert logview.render("plain text [1]") == "plain text [1]"
    assert logview.render("[1, 2]") == "[1, 2]"


def test_each_line_of_a_process_carries_its_name() -> None:
    lines: list[str] = []
    # Colours are for terminals; click.echo drops them elsewhere.
    console = logview.Console(["broker", "analytics"], echo=lambda s: lines.append(unstyle(s)))
    console.line("broker", "accepted kshop.x.y id=1")
    console.line("analytics", '{"message": "a\\nb", "level": "INFO"}')
    assert [line.split(" │ ")[0] for line in lines] == ["broker   ", "analytics", "analytics"]
    assert lines[0].endswith("│ accepted kshop.x.y id=1")
