"""cli/supervisor.py with real child processes (`sleep`, a shell that fails): reaping, restarts,
dependants, giving up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


@dataclass
class Recorded:
    """A child whose start and stop are written down in order."""

    name: str
    events: list[str]
    run: CommandRun = field(init=False)

    def __post_init__(self) -> None:
        self.events.append(f"{self.name} started")
        self.run = CommandRun(self.name, subprocess.Popen(["sleep", "60"]), 2.0)

    @property
    def pid(self) -> int | None:
        return self.run.pid

    def poll(self) -> int | None:
        return self.run.poll()

    def stop(self, timeout_s: float | None = None) -> None:
        if self.run.poll() is None:
            self.events.append(f"{self.name} stopped")
        self.run.stop(timeout_s)


def test_a_broker_death_stops_the_worker_before_the_broker_starts_again(
    supervisor: Supervisor,
) -> None:
    # A worker that outlived its broker would commit the offsets it read there to the new
    # one; so it is stopped first and started fresh once the broker is back and repaired.
    events: list[str] = []
    broker = ChildSpec(
        name="broker",
        start=lambda: Recorded("broker", events),
        on_death=lambda: events.append(f"broker died (worker alive: {alive()})"),
        after_restart=lambda: events.append("topics created"),
        stop_while_down=("worker",),
    )
    worker = ChildSpec(name="worker", start=lambda: Recorded("worker", events))

    def alive() -> bool:
        pid = supervisor.pid("worker")
        return pid is not None and psutil.pid_exists(pid)

    first_broker = adopt(supervisor, broker)
    first_worker = adopt(supervisor, worker)
    events.clear()
    os.kill(first_broker, signal.SIGKILL)

    until(supervisor, lambda: supervisor.pid("worker") != first_worker)
    until(supervisor, lambda: supervisor.state("worker") is State.READY)
    assert events == [
        "broker died (worker alive: True)",
        "worker stopped",
        "broker started",
        "topics created",
        "worker started",
    ]
    assert not psutil.pid_exists(first_worker)
    # Restarted because of the broker, not for a failure of its own.
    assert counter_value(supervisor, "mgw_supervisor_child_exits_total", "worker") == 0
    assert counter_value(supervisor, "mgw_supervisor_restarts_total", "worker") == 1


def test_a_held_worker_stays_stopped_while_its_broker_cannot_start(
    supervisor: Supervisor,
) -> None:
    starts: list[int] = []

    def broker_start() -> CommandRun:
        starts.append(1)
        command = ["sleep", "60"] if len(starts) == 1 else ["sh", "-c", "exit 3"]
        return CommandRun("broker", subprocess.Popen(command), 2.0)

    broker = ChildSpec(name="broker", start=broker_start, stop_while_down=("worker",))
    first_broker = adopt(supervisor, broker)
    adopt(supervisor, sleeper("worker"))
    os.kill(first_broker, signal.SIGKILL)
    with pytest.raises(GiveUp, match="broker failed to start"):
        until(supervisor, lambda: False)
    assert supervisor.state("worker") is State.HELD
    assert supervisor.pid("worker") is None or not psutil.pid_exists(supervisor.pid("worker"))


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
