"""Ports for `mgw up`'s processes, chosen without a race.

Testing that a port is free, releasing it and letting a child bind it later is a race: another
program (another `mgw up` started a moment later) can take it in between, and the child then
fails with "Address already in use". So:

- A port a process of ours serves on (the gateway's HTTP port, the worker's ops port) is bound
  here, by `mgw up`, and handed to the child as an inherited socket (GATEWAY_LISTEN_FD,
  METRICS_LISTEN_FD). `mgw up` keeps it for its whole life, so a restarted child serves on the
  same port and nothing can take it meanwhile.
- A service that binds its own port (the broker, PostgreSQL, Redis binaries) is started on a
  free port, and on another one when its start fails because a process took that port between
  the check and the bind.

Every error names the port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from loguru import logger

from core.embedded import EmbeddedServiceError, free_port
from core.embedded.process import LOCALHOST

START_ATTEMPTS = 3

T = TypeVar("T")


def bind_listener(
    preferred: int | None, host: str = LOCALHOST, what: str = "a listener"
) -> socket.socket:
    """A listening TCP socket on `preferred` when it is free, else on a port the OS picks
    (and said, naming `what` and both ports); inheritable, so a child can serve on it."""
    taken: OSError | None = None
    for port in ([preferred] if preferred else []) + [0]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As servers do: a port left in TIME_WAIT by a stopped stack is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            taken = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        if taken is not None:
            logger.warning(
                "{} port {} on {} is taken ({}); serving on {} instead",
                what,
                preferred,
                host,
                taken.strerror or taken,
                port_of(sock),
            )
        return sock
    raise OSError(f"no port free on {host} (tried {preferred} and one the OS picks)")


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def start_on_free_port(
    what: str, start: Callable[[int], T], preferred: int | None = None, host: str = LOCALHOST
) -> T:
    """Start a service that binds its own port on a free one (`preferred` when free); if the
    start fails and the port is now taken, another process took it after the check: try again
    on another port, up to START_ATTEMPTS times."""
    tried: list[int] = []
    while True:
        # A check, not a reservation: the service binds it later, hence the retry.
        if preferred and preferred not in tried and port_is_free(preferred, host):
            port = preferred
        else:
            port = free_port(host)
        tried.append(port)
        try:
            return start(port)
        except EmbeddedServiceError:
            if port_is_free(port, host) or len(tried) >= START_ATTEMPTS:
                raise
            logger.warning(
                "port {} on {} was taken by another program while {} started; trying another",
                port,
                host,
                what,
            )
