"""How `mgw up` gets its ports (cli/ports.py, the supervisor's metrics port): a port is held from
the moment it is chosen, or a start that lost its port to another program is tried again on
another one; never "Address already in use" without a port named."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from cli.ports import bind_listener, port_is_free, port_of, start_on_free_port
from cli.supervisor import SupervisorMetrics
from core.embedded import EmbeddedServiceError


@pytest.fixture
def held() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield port_of(other)


def test_a_listener_takes_the_preferred_port_or_another_and_holds_it(held: int) -> None:
    with bind_listener(None) as first:
        free = port_of(first)
    with bind_listener(free) as preferred:
        assert port_of(preferred) == free
        assert not port_is_free(free)  # held from the moment it was chosen
        assert preferred.get_inheritable()  # a child can serve on it
    with bind_listener(held) as fallback:
        assert port_of(fallback) not in (held, 0)


def test_a_service_that_lost_its_port_to_another_program_is_started_on_another() -> None:
    tried: list[int] = []
    thieves: list[socket.socket] = []

    def start(port: int) -> int:
        tried.append(port)
        if len(tried) == 1:
            # Another program takes the port between the check and the service's bind.
            thief = socket.socket()
            thief.bind(("127.0.0.1", port))
            thief.listen()
            thieves.append(thief)
            raise EmbeddedServiceError(f"the broker exited: 127.0.0.1:{port} in use")
        return port

    try:
        started = start_on_free_port("the broker", start)
    finally:
        for thief in thieves:
            thief.close()
    assert len(tried) == 2 and tried[0] != tried[1] and started == tried[1]


def test_a_failed_start_on_a_free_port_is_not_retried() -> None:
    calls: list[int] = []

    def start(port: int) -> int:
        calls.append(port)
        raise EmbeddedServiceError("initdb failed")

    with pytest.raises(EmbeddedServiceError, match="initdb failed"):
        start_on_free_port("postgresql", start)
    assert len(calls) == 1  # the port is free: its failure is the service's own


def test_the_supervisor_serves_its_metrics_on_another_port_when_its_own_is_taken(
    held: int,
) -> None:
    # Before: "mgw up failed: [Errno 98] Address already in use" (no port named), because
    # the port was checked at start and bound only once the stack was up.
    port, stop = SupervisorMetrics().serve(held)
    try:
        assert port != held
        assert "mgw_supervisor" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop()


def test_a_preferred_port_that_is_taken_is_said_with_the_one_used(
    held: int, warnings_seen: list[str]
) -> None:
    """Found by hand: `mgw up --gateway-port 8080` with 8080 taken served on another port and
    said nothing (only the banner's URL differed)."""
    with bind_listener(held, what="gateway HTTP") as fallback:
        used = port_of(fallback)
    (said,) = [w for w in warnings_seen if "gateway HTTP" in w]
    assert f"gateway HTTP port {held} on 127.0.0.1 is taken" in said
    assert f"serving on {used} instead" in said
