"""The benchmark scripts run end to end and print the tables the README quotes.

Their --quick modes only: the figures of a short run on a busy machine mean
nothing, but a script that no longer starts its contenders, or prints a table
without a row, would go unnoticed until the next time someone rereads the README.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = ("kshop", "bare FastAPI", "func-python")


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows(table: str) -> list[list[str]]:
    """The body rows of the first Markdown table in `table`, as cells."""
    lines = [x for x in table.splitlines() if x.startswith("|")]
    return [[c.strip() for c in x.strip("|").split("|")] for x in lines[2:]]


def microseconds(cell: str) -> int:
    assert cell.endswith(" µs"), cell
    return int(cell.removesuffix(" µs").replace(",", ""))


def test_coldstart_measures_every_contender_and_gives_the_ratios() -> None:
    out = run("coldstart.py", "--quick")
    table = rows(out)
    assert [r[0].split()[0] for r in table] == ["kshop", "bare", "func-python"]
    for row in table:
        assert row[2] == "3"  # runs
        assert row[5].endswith("MiB") and float(row[5].split()[0]) > 5
    assert table[1][6] == "1.00\N{MULTIPLICATION SIGN}"  # FastAPI against itself
    assert "goal ≤ 1.10\N{MULTIPLICATION SIGN}" in out


def test_throughput_saturates_then_paces_every_contender() -> None:
    out = run("throughput.py", "--quick", "--otlp", "--rates", "200")
    saturation, latency = out.split("Latency at fixed rates")
    saturated = rows(saturation)
    assert [r[0] for r in saturated][:3] == [
        "kshop no-op",
        "kshop no-op, no idempotency",
        "kshop no-op + OTLP",
    ]
    for row in saturated:
        assert int(row[2].replace(",", "")) > 50, row  # req/s
        assert row[5] == "0", row  # errors
        assert microseconds(row[8]) > 0, row  # the server's CPU per event
        assert row[10].endswith("%"), row  # steal
    # Redis works for the lock only: the meter reads Redis's process, not another.
    assert microseconds(saturated[0][9]) > microseconds(saturated[1][9])
    paced = rows(latency)
    assert len(paced) == 5
    for row in paced:
        assert row[0] == "200/s"
        assert 150 <= int(row[2].replace(",", "")) <= 210, row  # 2xx/s near the offered rate
        assert row[6] == "0", row
        assert microseconds(row[8]) > 0, row
    assert "p99 at 200 events/s" in out
    assert "stole more than 2 % of the machine's CPU: 0 (up to 0 a run" in out  # --quick


def test_a_contender_that_cannot_start_ends_the_run_with_status_1_and_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, "bench/coldstart.py", "--quick", "--python", "/nonexistent/python"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "FileNotFoundError" in done.stderr and "/nonexistent/python" in done.stderr
    assert "Traceback" not in done.stderr
