"""The drain of `mgw up` (cli/drain.py) over a sequence of measurements: when it ends, what it
says, and that a log (no terminal) gets every step as a plain line."""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich.console import Console

from cli.backlog import Backlog, OffsetPastEnd
from cli.drain import drain


class Measured:
    """Measurements in order (the last repeats); what `drain` needs of a BacklogProbe."""

    def __init__(self, backlogs: list[Backlog]) -> None:
        self._backlogs: Iterator[Backlog] = iter(backlogs)
        self._last = backlogs[-1]

    def measure(self) -> Backlog:
        self._last = next(self._backlogs, self._last)
        return self._last


def piped() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=10_000), out


def run(backlogs: list[Backlog], console: Console, max_reads: int = 50) -> bool:
    reads = 0

    def tick() -> bool:
        nonlocal reads
        reads += 1
        return reads <= max_reads

    result = drain(
        Measured(backlogs),  # type: ignore[arg-type]
        console,
        tick=tick,
        interrupted=lambda: False,
        interval_s=0,
    )
    return result.drained


def test_without_a_terminal_every_step_is_a_plain_line() -> None:
    console, out = piped()
    steps = [Backlog({"content.raw": n}) for n in (30, 30, 12, 5, 0)]
    assert run(steps, console)
    lines = out.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "30 events left: content.raw 30",
        "12 events left: content.raw 12",
        "5 events left: content.raw 5",
        "0 events left",
    ]
    assert all(line.startswith("draining (Ctrl-C again stops at once)") for line in lines)
    assert "\x1b" not in out.getvalue()  # no control codes in a log


def test_an_offset_past_the_log_end_keeps_the_drain_waiting() -> None:
    console, out = piped()
    lost = Backlog({"content.raw": 0}, past_end=(OffsetPastEnd("content.raw", 1, 157, 66),))
    assert not run([lost], console, max_reads=5)
    assert "content.raw[1] 157 > 66" in out.getvalue()
    # Repaired by the worker (read again from the start): then it drains.
    assert run([lost, Backlog({"content.raw": 4}), Backlog({"content.raw": 0})], console)
