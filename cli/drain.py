"""Stopping `mgw up` without losing what it accepted: wait until the worker has processed every
accepted event (cli/backlog.py measures what is left), showing what is left per topic.

The gateway is stopped before this starts (no more writes); the supervisor keeps restarting a
worker that dies meanwhile (`tick`). A second Ctrl-C ends the wait at once, and the caller says
how many events it leaves behind. A committed offset past its log end (the broker lost records)
is never counted as drained: the worker reads that partition again from its start, and the
drain waits for that too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console

from cli.backlog import Backlog, BacklogProbe, describe, left_by_topic

# Reads in a row with nothing left: an event published from the outbox between two reads
# shows in the second.
QUIET_READS = 2
INTERVAL_S = 1.0
# Where no spinner can be drawn (a pipe, a log file): a line each time the text changes, and
# this often while it does not.
LINE_EVERY_S = 5.0
PREFIX = "draining (Ctrl-C again stops at once): "


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    last: Backlog | None  # the last measurement (None if none succeeded)


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A function that shows the drain's progress: a spinner's text on a terminal, plain lines
    elsewhere (a log keeps every step, never the control codes of a redrawn line)."""
    if console.is_terminal:
        with console.status(f"{PREFIX}measuring what is left...") as status:
            yield lambda text: status.update(PREFIX + text)
        return
    shown = ""
    shown_at = 0.0

    def line(text: str) -> None:
        nonlocal shown, shown_at
        if text != shown or time.monotonic() - shown_at >= LINE_EVERY_S:
            console.print(PREFIX + text, soft_wrap=True)
            shown, shown_at = text, time.monotonic()

    yield line


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
    second stop signal came; `report` gets events left per topic after each read."""
    last: Backlog | None = None
    quiet = 0
    with _progress(console) as show:
        while True:
            if interrupted():
                return DrainResult(False, last)
            if not tick():
                return DrainResult(False, last)
            try:
                last = probe.measure()
                text = describe(last)
            except Exception as exc:  # the broker may be restarting: keep trying
                text = f"backlog unknown ({exc!r}); retrying"
            else:
                report(left_by_topic(last))
                quiet = quiet + 1 if last.drained else 0
                if quiet >= QUIET_READS:
                    return DrainResult(True, last)
            show(text)
            time.sleep(interval_s)
