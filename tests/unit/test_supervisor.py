"""cli/supervisor.py with real child processes (`sleep`, a shell that fails): reaping, restarts,
dependants, giving up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from cli.restart_policy import RestartPolicy
from cli.supervisor import ChildSpec, CommandRun, GiveUp, State, Supervisor

FAST = RestartPolicy(initial_delay_s=0.01, max_delay_s=0.05, give_up_after=3, window_s=60)


def sleeper(name: str) -> ChildSpec:
    return ChildSpec(
        name=name, start=lambda: CommandRun(name, subprocess.Popen(["sleep", "60"]), 2.0)
    )


def until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        supervisor.tick()
        time.sleep(0.01)


def counter_value(supervisor: Supervisor, name: str, child: str) -> float:
    value = supervisor.metrics.registry.get_sample_value(name, {"child": child})
    return value or 0.0


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    sup = Supervisor(FAST)
    yield sup
    sup.stop_all()


def adopt(supervisor: Supervisor, spec: ChildSpec) -> int:
    running = spec.start()
    supervisor.adopt(spec, running)
    assert running.pid is not None
    return running.pid


def test_a_killed_child_is_reaped_counted_and_restarted_alone(supervisor: Supervisor) -> None:
    first = adopt(supervisor, sleeper("worker"))
    other = adopt(supervisor, sleeper("broker"))
    os.kill(first, signal.SIGKILL)

    until(supervisor, lambda: supervisor.pid("worker") != first)
    until(supervisor, lambda: supervisor.state("worker") is State.READY)
    assert not psutil.pid_exists(first)  # waited for: no zombie left behind
    assert supervisor.pid("broker") == other  # the others are not touched
    assert counter_value(supervisor, "mgw_supervisor_child_exits_total", "worker") == 1
    assert counter_value(supervisor, "mgw_supervisor_restarts_total", "worker") == 1
    assert counter_value(supervisor, "mgw_supervisor_restarts_total", "broker") == 0
    assert (
        supervisor.metrics.registry.get_sample_value("mgw_supervisor_child_up", {"child": "worker"})
        == 1
    )


def test_a_restart_repairs_its_dependants(supervisor: Supervisor) -> None:
    repaired: list[str] = []
    broker = ChildSpec(
        name="broker",
        start=lambda: CommandRun("broker", subprocess.Popen(["sleep", "60"]), 2.0),
        after_restart=lambda: repaired.append("topics"),
        restart_also=("worker",),
    )
    first_broker = adopt(supervisor, broker)
    first_worker = adopt(supervisor, sleeper("worker"))
    os.kill(first_broker, signal.SIGKILL)

    until(supervisor, lambda: supervisor.pid("worker") != first_worker)
    until(supervisor, lambda: supervisor.state("worker") is State.READY)
    assert repaired == ["topics"]
    assert not psutil.pid_exists(first_worker)
    # Restarted because of the broker, not for a failure of its own.
    assert counter_value(supervisor, "mgw_supervisor_child_exits_total", "worker") == 0


def test_a_child_failing_at_start_makes_it_give_up_and_leaves_the_others_running(
    supervisor: Supervisor,
) -> None:
    attempts: list[int] = []

    def failing() -> CommandRun:
        attempts.append(1)
        return CommandRun("gateway", subprocess.Popen(["sh", "-c", "exit 3"]), 2.0)

    other = adopt(supervisor, sleeper("postgres"))
    first = failing()
    supervisor.adopt(ChildSpec(name="gateway", start=failing, ready=lambda: False), first)
    with pytest.raises(GiveUp, match="gateway failed to start 3 times"):
        until(supervisor, lambda: False)
    assert supervisor.state("gateway") is State.GAVE_UP
    assert len(attempts) == 3  # the first start and two restarts; the third failure ends it
    assert supervisor.state("postgres") is State.READY
    assert psutil.Process(other).status() != psutil.STATUS_ZOMBIE


def test_a_child_never_ready_is_stopped_and_counted_as_a_start_failure(
    supervisor: Supervisor,
) -> None:
    spec = ChildSpec(
        name="worker",
        start=lambda: CommandRun("worker", subprocess.Popen(["sleep", "60"]), 2.0),
        ready=lambda: False,
        ready_timeout_s=0.2,
    )
    first = adopt(supervisor, spec)
    os.kill(first, signal.SIGKILL)
    until(supervisor, lambda: supervisor.state("worker") is State.STARTING)
    starting = supervisor.pid("worker")
    until(supervisor, lambda: supervisor.pid("worker") != starting)
    assert starting is not None and not psutil.pid_exists(starting)


def test_stop_all_stops_every_child_and_nothing_restarts(supervisor: Supervisor) -> None:
    pids = [adopt(supervisor, sleeper(name)) for name in ("broker", "worker", "gateway")]
    supervisor.stop("gateway")
    supervisor.tick()
    assert supervisor.state("gateway") is State.STOPPED
    supervisor.stop_all()
    supervisor.tick()
    assert not any(psutil.pid_exists(pid) for pid in pids)
