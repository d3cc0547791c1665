"""`kshop mail`: the mail the local SMTP server kept, newest last.

The server (services.SmtpServer) writes one JSON file per message; this reads
them, without the servers' drivers, so `kshop mail` starts at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from functions.dev.table import table

Mail = TypedDict(
    "Mail",
    {
        "to": list[str],
        "from": str,
        "subject": str,
        "date": str,
        "text": str | None,
        "html": str | None,
        "raw": str,
    },
)
"""One received message. `to` and `from` are the SMTP envelope's, so Bcc recipients show."""


def read_mail(directory: Path) -> list[Mail]:
    """The messages stored in directory, oldest first."""
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def listing(directory: Path) -> str:
    messages = read_mail(directory) if directory.is_dir() else []
    if not messages:
        return f"No mail in {directory}."
    rows = [
        [str(n), m["date"][:19].replace("T", " "), ", ".join(m["to"]), m["subject"]]
        for n, m in enumerate(messages, start=1)
    ]
    return table(["N", "DATE", "TO", "SUBJECT"], rows)


def message(directory: Path, number: int) -> Mail:
    """Message `number`, counting from 1 as `listing` does; IndexError when there is none."""
    messages = read_mail(directory) if directory.is_dir() else []
    if not 1 <= number <= len(messages):
        raise IndexError(f"no message {number}: there are {len(messages)} in {directory}")
    return messages[number - 1]


def show(mail: Mail) -> str:
    body = mail["text"] if mail["text"] is not None else mail["html"] or ""
    return "\n".join(
        [
            f"From:    {mail['from']}",
            f"To:      {', '.join(mail['to'])}",
            f"Date:    {mail['date']}",
            f"Subject: {mail['subject']}",
            "",
            body,
        ]
    )
