"""`.kshop/endpoints.json`: where `kshop dev` runs everything, for the other commands.

It is written once every process answers and removed on exit. A file left by a
`kshop dev` that was killed names a process that is gone, and is ignored.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

STATE = Path(".kshop")
FILE = STATE / "endpoints.json"
MAIL = STATE / "mail"
DEFAULT_BROKER = "http://localhost:8080/default/default"


@dataclass(frozen=True)
class Endpoints:
    broker: str
    functions: dict[str, str]
    mongodb: str
    redis: str
    smtp: str
    mail: str
    pid: int

    def save(self, path: Path = FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        # Readers never see half a file.
        partial.replace(path)

    @classmethod
    def load(cls, path: Path = FILE) -> Endpoints | None:
        """The endpoints of the running `kshop dev`, or None when none runs."""
        try:
            endpoints = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return endpoints if _alive(endpoints.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process, but one that runs
    return True


def remove(path: Path = FILE) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


def broker_url() -> str:
    endpoints = Endpoints.load()
    return endpoints.broker if endpoints else DEFAULT_BROKER


def mail_directory() -> Path:
    endpoints = Endpoints.load()
    return Path(endpoints.mail) if endpoints else MAIL
