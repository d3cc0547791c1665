"""The live log of `kshop dev`: every process's lines, readable and named.

Functions log JSON, one object per line, which is right for a cluster's log
store and hard to read in a terminal; here each becomes one short line. The
broker already writes one readable line per delivery attempt, kept as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

# Shown after the message, in this order, when a log line carries them.
_CONTEXT = ("ce_type", "ce_id", "trace_id")
_LEVEL_COLOURS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}
_NAME_COLOURS = ("cyan", "green", "magenta", "blue", "yellow", "bright_cyan", "bright_green")


def render(line: str) -> str:
    """A function's JSON log line as `time LEVEL message key=value`; other lines as they are."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "message" not in entry:
        return line
    clock = str(entry.get("time", ""))[11:23]
    level = str(entry.get("level", ""))
    text = " ".join(
        filter(None, (clock, click.style(level, fg=_LEVEL_COLOURS.get(level)), entry["message"]))
    )
    context = " ".join(f"{key}={entry[key]}" for key in _CONTEXT if entry.get(key))
    rendered = f"{text}  {context}" if context else text
    if entry.get("exception"):
        rendered += "\n" + str(entry["exception"])
    return rendered


class Console:
    """Writes each process's lines behind its name, the names in a column."""

    def __init__(self, names: list[str], echo: Callable[[str], None] = click.echo) -> None:
        self.width = max(map(len, names), default=0)
        self.colours = {name: _NAME_COLOURS[i % len(_NAME_COLOURS)] for i, name in enumerate(names)}
        self.echo = echo

    def _prefix(self, name: str) -> str:
        return click.style(name.ljust(self.width), fg=self.colours.get(name)) + " │ "

    def line(self, name: str, text: str) -> None:
        prefix = self._prefix(name)
        for part in render(text).splitlines() or [""]:
            self.echo(prefix + part)

    def notice(self, name: str, text: str) -> None:
        self.echo(self._prefix(name) + click.style(text, bold=True))
