"""Real Redis, MongoDB-wire and SMTP servers on free loopback ports.

Used by the pytest fixtures and by `kshop dev`. Every server is a context manager::

    with RedisServer() as redis, MongoServer() as mongo:
        ...  # redis.url, mongo.url
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from redis.backoff import NoBackoff
from redis.retry import Retry

from functions.dev.mailbox import Mail, read_mail

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
LOG_TAIL_LINES = 20


class ServiceError(RuntimeError):
    """A server could not be found, started or reached."""


def free_ports(count: int) -> list[int]:
    """TCP ports on the loopback interface that nothing uses right now.

    All different: every socket is bound before any is closed.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def tools_dir() -> Path:
    """Where scripts/bootstrap puts the Go-built tools (ferretdb, helm)."""
    return Path(os.environ.get("KSHOP_TOOLS") or Path.home() / ".cache" / "kshop" / "bin")


class Service(ABC):
    """Something with start() and stop() that is also a context manager."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProcessServer(Service):
    """A server binary run in its own process group, with its data and log in a temp dir."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @abstractmethod
    def command(self, workdir: Path) -> list[str]:
        """The command line; raises ServiceError when the binary is missing."""

    @abstractmethod
    def answers(self) -> bool:
        """Whether the server answers a real request."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        if self._process is not None:
            return self
        workdir = Path(tempfile.mkdtemp(prefix=f"kshop-{type(self).__name__.lower()}-"))
        self._workdir = workdir
        try:
            cmd = self.command(workdir)
        except ServiceError:
            self._remove_workdir()
            raise
        with (workdir / "server.log").open("wb") as log:
            # A session of its own, so stop() can kill the server with all its children.
            self._process = subprocess.Popen(
                cmd,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        name = Path(cmd[0]).name
        deadline = time.monotonic() + START_TIMEOUT
        while (code := self._process.poll()) is None:
            if self.answers():
                return self
            if time.monotonic() > deadline:
                self._fail(f"{name} did not answer on port {self.port} within {START_TIMEOUT:g} s")
            time.sleep(0.05)
        self._fail(f"{name} exited with code {code} while starting")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            _kill_group(process)
        self._remove_workdir()

    def _fail(self, reason: str) -> NoReturn:
        log = self._workdir / "server.log" if self._workdir else None
        lines = log.read_text(errors="replace").splitlines() if log and log.exists() else []
        self.stop()
        tail = "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
        raise ServiceError(f"{reason}; the end of its log:\n{tail}")

    def _remove_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT, and reap the server."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)
    # Also reaches children that outlived the server itself.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _require(name: str, hint: str, *extra_dirs: Path) -> str:
    """The path of a binary on PATH or in extra_dirs, else a ServiceError saying how to get it."""
    for path in (None, *(str(d) for d in extra_dirs)):
        found = shutil.which(name, path=path)
        if found:
            return found
    places = " or in ".join(["PATH", *(str(d) for d in extra_dirs)])
    raise ServiceError(f"{name} not found on {places}; run scripts/bootstrap to install it {hint}")


class RedisServer(ProcessServer):
    """Debian's redis-server, without persistence; `options` are added to its command line
    (a unix socket, a TLS port), and the plain TCP port stays for the readiness check."""

    def __init__(self, port: int | None = None, options: Sequence[str] = ()) -> None:
        super().__init__(port)
        self.options = list(options)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self, workdir: Path) -> list[str]:
        binary = _require("redis-server", "(Debian package redis-server)")
        return [
            binary,
            *("--port", str(self.port), "--bind", HOST),
            *("--save", "", "--appendonly", "no"),
            *self.options,
        ]

    def answers(self) -> bool:
        # One short try: start() does the retrying, and watches the process meanwhile.
        client = redis.Redis(
            host=HOST,
            port=self.port,
            socket_connect_timeout=1,
            socket_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


class MongoServer(ProcessServer):
    """mongod when it is on PATH, else FerretDB with its SQLite backend."""

    @property
    def url(self) -> str:
        return f"mongodb://{HOST}:{self.port}/"

    def command(self, workdir: Path) -> list[str]:
        data = workdir / "data"
        data.mkdir()
        mongod = shutil.which("mongod")
        if mongod:
            return [mongod, "--port", str(self.port), "--bind_ip", HOST, "--dbpath", str(data)]
        ferretdb = _require("ferretdb", "(or put mongod on PATH)", tools_dir())
        return [
            ferretdb,
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--listen-addr={HOST}:{self.port}",
            f"--state-dir={workdir}",
            # The debug/metrics listener defaults to a fixed port: two servers would clash.
            "--debug-addr=-",
            "--telemetry=disable",
        ]

    def answers(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500, timeoutMS=1000
        )
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()


@functools.cache
def mongodb_env(url: str) -> dict[str, str]:
    """The runtime settings that a MongoDB-wire server at `url` needs.

    FerretDB 1.x checks an update's filter and writes in separate steps, so a
    status guard is atomic only within one connection (FerretDB/FerretDB#3040):
    against it, each process keeps to one connection. Real MongoDB needs nothing.
    """
    with MongoClient[dict[str, object]](url, serverSelectionTimeoutMS=5000) as client:
        build = client.admin.command("buildInfo")
    return {"MONGODB_MAX_POOL_SIZE": "1"} if "ferretdbVersion" in build else {}


class _MailStore:
    """aiosmtpd handler that writes each message to a JSON file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # SMTP sends CRLF line ends; the parts read back as plain text, with LF.
        message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(message, EmailMessage)  # policy.default always makes one
        # A missing or unreadable Date header leaves the time of arrival.
        sent = getattr(message["Date"], "datetime", None) or datetime.now(UTC)
        mail: Mail = {
            "to": list(envelope.rcpt_tos),
            "from": envelope.mail_from or "",
            "subject": str(message["Subject"] or ""),
            "date": sent.isoformat(),
            "text": _body(message, "plain"),
            "html": _body(message, "html"),
            "raw": raw.decode(errors="replace"),
        }
        # The name sorts in arrival order; the rename makes a file appear whole to readers.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        partial = self.directory / f".{name}"
        partial.write_text(json.dumps(mail, indent=2))
        partial.rename(self.directory / name)
        return "250 Message accepted for delivery"


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    return str(part.get_content()) if part is not None else None


class SmtpServer(Service):
    """An aiosmtpd server in a thread that keeps every message as JSON in directory."""

    def __init__(self, directory: Path | str = ".kshop/mail", port: int | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.directory = Path(directory)
        self._controller: Controller | None = None

    def start(self) -> Self:
        if self._controller is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            # A fixed server_hostname: the default asks DNS for our FQDN, which can stall.
            controller = Controller(
                _MailStore(self.directory),
                hostname=self.host,
                port=self.port,
                server_hostname="localhost",
                ready_timeout=START_TIMEOUT,
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def messages(self) -> list[Mail]:
        return read_mail(self.directory)
