"""No 202 once shutdown starts: on SIGTERM or SIGINT the gateway refuses new writes at once.

uvicorn stops listening on a signal but still serves the requests of open connections while
it winds down; a write accepted then would reach a broker that may be going away with it
(`mgw up` stops the gateway first and then drains the topics). So the first signal makes the
publisher refuse (503 with Retry-After: another instance, or this one restarted, will take
it), and uvicorn's own handler then runs as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from loguru import logger

from core.publisher import Publisher

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REASON = "the gateway is shutting down and accepts no more writes; retry in a moment"


@contextmanager
def refuse_writes_on_exit_signals(publisher: Publisher) -> Iterator[None]:
    """Wrap the current SIGINT/SIGTERM handlers (uvicorn's) while the app runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: nothing to wrap here
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        publisher.refuse_from_now(REASON)
        logger.info("signal {}: refusing new writes", signal.Signals(signum).name)
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt

    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, chained in previous.items():
            signal.signal(sig, chained)
