"""Local Knative and the `kshop` command; their packages come with the `local` extra."""

from __future__ import annotations

import sys

# The top-level packages of the `local` extra and theirs, as the CLI imports them.
_LOCAL = frozenset({"typer", "click", "rich", "yaml", "lark", "croniter", "aiosmtpd"})


def main() -> None:
    """The `kshop` console script: the CLI, or one clear line where its packages are missing.

    An install without the `local` extra (`pip install kshop`) has the script
    but not typer and the rest.
    """
    try:
        from functions.dev.cli import main as cli
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] not in _LOCAL:
            raise
        sys.exit(
            f"kshop: the command needs the 'local' extra, and {missing.name} is not installed: "
            "run `uv sync --extra local` (or `pip install 'kshop[local]'`)"
        )
    cli()
