"""Stopping `mgw up` without losing what it accepted: wait until the worker has processed every
accepted event (cli/backlog.py measures what is left), showing what is left per worker group.

The gateway is stopped before this starts (no more writes); the supervisor keeps restarting a
worker that dies meanwhile (`tick`). A second Ctrl-C ends the wait at once, and the caller says
how many events it leaves behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console

from cli.backlog import Backlog, BacklogProbe, by_worker_group, describe

# Reads in a row with nothing left: an event published from the outbox between two reads
# shows in the second.
QUIET_READS = 2
INTERVAL_S = 1.0
# Where no spinner can be drawn (a pipe, a log file), one line this often.
LINE_EVERY_S = 5.0


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    last: Backlog | None  # the last measurement (None if none succeeded)


def drain(
    probe: BacklogProbe,
    console: Console,
    *,
    tick: Callable[[], bool],
    interrupted: Callable[[], bool],
    report: Callable[[dict[str, int]], None] = lambda left: None,
    interval_s: float = INTERVAL_S,
) -> DrainResult:
    """Wait until nothing is left. `tick` runs the supervisor and says whether draining can
    still succeed (False: the worker or the broker is gone for good); `interrupted` says that a
    second stop signal came; `report` gets events left per group after each read."""
    last: Backlog | None = None
    quiet = 0
    shown_at = 0.0
    with console.status("draining: measuring what is left...") as status:
        while True:
            if interrupted():
                return DrainResult(False, last)
            if not tick():
                return DrainResult(False, last)
            try:
                last = probe.measure()
                text = describe(last, probe.index)
            except Exception as exc:  # the broker may be restarting: keep trying
                text = f"backlog unknown ({exc!r}); retrying"
            else:
                report(by_worker_group(last, probe.index))
                quiet = quiet + 1 if last.total == 0 else 0
                if quiet >= QUIET_READS:
                    return DrainResult(True, last)
            line = f"draining (Ctrl-C again stops at once): {text}"
            status.update(line)
            if not console.is_terminal and time.monotonic() - shown_at >= LINE_EVERY_S:
                console.print(line, soft_wrap=True)
                shown_at = time.monotonic()
            time.sleep(interval_s)
