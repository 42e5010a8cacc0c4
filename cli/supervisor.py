"""`mgw up`'s supervisor: watch every child, reap and report a dead one, restart it.

Children are the embedded services (broker, PostgreSQL, Redis) and the worker and gateway
processes. The supervisor runs in the main thread of `mgw up` and does its work in `tick()`,
called every half second: a dead child is reaped (its process waited for, a service's whole
process group killed), counted in `mgw_supervisor_child_exits_total`, logged, and started
again on the same port and data dir after the delay cli/restart_policy.py gives. A restart
never touches the other children, except those named in `stop_while_down`: they are stopped
as soon as it dies, before it is started again, and started fresh once it is ready (the worker
while the broker restarts: a worker that outlived its broker would commit the offsets it read
there to the new one, which has none of those records, and skip what the new one gets). Only
a child that keeps failing at start raises GiveUp, and the caller drains and stops.

Everything happens in the main thread on purpose: a service started from another thread
cannot get the parent-death signal (core/embedded/process.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from cli.restart_policy import RestartHistory, RestartPolicy, on_failure
from core.embedded import ServiceProcess

CHILD_STOP_TIMEOUT_S = 15.0
# A child held because another one died (the worker without its broker) has nothing to finish
# that could still reach that one: a short grace, then SIGKILL, so the restart is not delayed.
HOLD_STOP_TIMEOUT_S = 3.0


class Running(Protocol):
    """A started child, whatever kind of process it is."""

    @property
    def pid(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def stop(self, timeout_s: float | None = None) -> None: ...


@dataclass
class ServiceRun:
    """An embedded service; stop() reaps it and kills its process group if it crashed."""

    service: ServiceProcess

    @property
    def pid(self) -> int | None:
        return self.service.pid

    def poll(self) -> int | None:
        proc = self.service.process
        return None if proc is None else proc.poll()

    def stop(self, timeout_s: float | None = None) -> None:
        if timeout_s is None:
            self.service.stop()
        else:
            self.service.stop(timeout_s)


@dataclass
class CommandRun:
    """An `mgw` subprocess (worker, gateway): SIGTERM, then SIGKILL after a grace period."""

    name: str
    process: subprocess.Popen[bytes]
    stop_timeout_s: float = CHILD_STOP_TIMEOUT_S

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout_s: float | None = None) -> None:
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "{} (pid {}) did not stop in {:.0f} s; killing it",
                self.name,
                self.process.pid,
                timeout_s,
            )
            self.process.kill()
            self.process.wait(5)
        # The child leads its own session (cli/up.py _spawn): what it forked and left behind
        # (the gateway's server processes after a SIGKILL of their parent) would hold its port.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class ChildSpec:
    name: str
    # Starts the child; for a service it returns once the service answers.
    start: Callable[[], Running]
    # Polled after start until True; None means ready as soon as start() returned.
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    # Run after a restart made it ready again: what depends on it recovers here.
    after_restart: Callable[[], None] | None = None
    # Run when it dies after having been ready, before anything is stopped or restarted:
    # what it took with it can still be counted here.
    on_death: Callable[[], None] | None = None
    # Children stopped as soon as this one dies and started fresh once it is ready again
    # (not counted as their failures).
    stop_while_down: tuple[str, ...] = ()


class State(Enum):
    STARTING = "starting"
    READY = "ready"
    WAITING = "waiting to restart"
    HELD = "stopped until a child it needs is back"
    STOPPED = "stopped"
    GAVE_UP = "gave up"


@dataclass
class Child:
    spec: ChildSpec
    running: Running | None = None
    state: State = State.STOPPED
    started_at: float = 0.0
    ready_at: float | None = None
    restart_at: float = 0.0
    restarted: bool = False  # the next ready is a restart, not the first start
    history: RestartHistory = field(default_factory=RestartHistory)


class GiveUp(RuntimeError):
    def __init__(self, child: str, failures: int, window_s: float) -> None:
        super().__init__(
            f"{child} failed to start {failures} times within {window_s:.0f} s; giving up"
        )
        self.child = child


class SupervisorMetrics:
    """The supervisor's own metrics, in a registry of their own, served on `mgw up`'s ops port."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.exits = Counter(
            "mgw_supervisor_child_exits_total",
            "Children of mgw up that exited without being asked to",
            ["child"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "mgw_supervisor_restarts_total",
            "Children of mgw up restarted and ready again",
            ["child"],
            registry=self.registry,
        )
        self.up = Gauge(
            "mgw_supervisor_child_up",
            "1 while the child is ready",
            ["child"],
            registry=self.registry,
        )
        self.events_left = Gauge(
            "mgw_drain_events_left",
            "What is left while mgw up drains: events per topic, in the outbox, and titles "
            "due for enrichment",
            ["topic"],
            registry=self.registry,
        )
        self.events_lost = Counter(
            "mgw_broker_events_lost",
            "Accepted events the embedded broker held and the worker had not processed when "
            "the broker died (the worker's lag then: an estimate), per topic",
            ["topic"],
            registry=self.registry,
        )

    def serve(self, preferred: int, host: str = "127.0.0.1") -> tuple[int, Callable[[], None]]:
        """Serve /metrics on host:`preferred`, or on a port the OS picks when that one is
        taken (bound at once: no port is checked and bound later). Returns the port and the
        function that stops serving."""
        try:
            server, thread = start_http_server(preferred, addr=host, registry=self.registry)
        except OSError as exc:
            logger.info(
                "supervisor metrics port {}:{} taken ({}); using another", host, preferred, exc
            )
            server, thread = start_http_server(0, addr=host, registry=self.registry)

        def shutdown() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return int(server.server_port), shutdown


class Supervisor:
    def __init__(
        self,
        policy: RestartPolicy | None = None,
        metrics: SupervisorMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.metrics = metrics or SupervisorMetrics()
        self._clock = clock
        self._children: dict[str, Child] = {}

    # ------------------------------------------------------------------ setup

    def adopt(self, spec: ChildSpec, running: Running) -> None:
        """Watch a child `mgw up` started (and saw ready) before supervising began."""
        now = self._clock()
        self._children[spec.name] = Child(spec, running, State.READY, started_at=now, ready_at=now)
        self.metrics.up.labels(spec.name).set(1)
        self.metrics.restarts.labels(spec.name)  # show 0 before the first restart
        self.metrics.exits.labels(spec.name)

    def names(self) -> list[str]:
        return list(self._children)

    def state(self, name: str) -> State:
        return self._children[name].state

    def pid(self, name: str) -> int | None:
        child = self._children[name]
        return child.running.pid if child.running is not None else None

    # ---------------------------------------------------------------- the loop

    def tick(self) -> None:
        """Notice deaths, restart what is due, promote started children to ready.

        Raises GiveUp when a child failed at start too often (it is stopped by then).
        """
        for child in list(self._children.values()):
            self._tick_child(child)

    def _tick_child(self, child: Child) -> None:
        now = self._clock()
        if child.state is State.WAITING and now >= child.restart_at:
            self._start(child)
        elif child.state is State.STARTING:
            assert child.running is not None
            code = child.running.poll()
            if code is not None:
                self._failed(child, code, ready_for_s=None)
            elif child.spec.ready is None or child.spec.ready():
                self._became_ready(child)
            elif now - child.started_at > child.spec.ready_timeout_s:
                logger.error(
                    "{} (pid {}) not ready {:.0f} s after its start; stopping it",
                    child.spec.name,
                    child.running.pid,
                    child.spec.ready_timeout_s,
                )
                child.running.stop()
                self._failed(child, None, ready_for_s=None)
        elif child.state is State.READY:
            assert child.running is not None and child.ready_at is not None
            code = child.running.poll()
            if code is not None:
                self._failed(child, code, ready_for_s=now - child.ready_at)

    def _start(self, child: Child) -> None:
        name = child.spec.name
        child.started_at = self._clock()
        try:
            child.running = child.spec.start()
        except Exception as exc:
            logger.error("{} could not be started: {}", name, exc)
            child.running = None
            self._failed(child, None, ready_for_s=None)
            return
        child.state = State.STARTING
        logger.info("{} started again (pid {}), waiting until it is ready", name, child.running.pid)
        if child.spec.ready is None:
            self._became_ready(child)

    def _became_ready(self, child: Child) -> None:
        name = child.spec.name
        child.state = State.READY
        child.ready_at = self._clock()
        self.metrics.up.labels(name).set(1)
        if not child.restarted:
            return
        child.restarted = False
        self.metrics.restarts.labels(name).inc()
        logger.warning(
            "{} restarted (pid {}) in {:.1f} s",
            name,
            child.running.pid if child.running else None,
            child.ready_at - child.started_at,
        )
        if child.spec.after_restart is not None:
            try:
                child.spec.after_restart()
            except Exception as exc:  # the child is up; its dependants' repair can retry later
                logger.error("after {} restarted: {}", name, exc)
        for other in child.spec.stop_while_down:
            self._release(other, reason=f"{name} is back")

    def _failed(self, child: Child, code: int | None, ready_for_s: float | None) -> None:
        name = child.spec.name
        pid = child.running.pid if child.running is not None else None
        self.metrics.up.labels(name).set(0)
        if code is not None:
            self.metrics.exits.labels(name).inc()
        if ready_for_s is not None and child.spec.on_death is not None:
            try:
                child.spec.on_death()
            except Exception as exc:  # a report is never worth a restart not done
                logger.error("after {} died: {}", name, exc)
        # Before it is started again: nothing of its old life may reach its new one.
        for other in child.spec.stop_while_down:
            self._hold(other, reason=f"{name} is down")
        if child.running is not None:
            # Reaps the process (no zombie); for a service also its process group (a killed
            # postmaster's backends would keep the port).
            child.running.stop()
        child.history, decision = on_failure(self.policy, child.history, self._clock(), ready_for_s)
        if code is None:
            what = "failed to start"
        elif ready_for_s is None:
            what = f"exited with code {code} while starting"
        else:
            what = f"exited with code {code} after {ready_for_s:.1f} s ready"
        if decision.give_up:
            child.state = State.GAVE_UP
            logger.error("{} (pid {}) {}; it keeps failing at start", name, pid, what)
            raise GiveUp(name, len(child.history.start_failures), self.policy.window_s)
        child.state = State.WAITING
        child.restart_at = self._clock() + decision.delay_s
        child.restarted = True
        logger.warning(
            "{} (pid {}) {}; restarting it in {:.1f} s (unplanned exit {} in a row)",
            name,
            pid,
            what,
            decision.delay_s,
            child.history.consecutive,
        )

    # ------------------------------------------------------------ deliberate

    def _hold(self, name: str, reason: str) -> None:
        """Stop a child until `_release`: not a failure of its own."""
        child = self._children.get(name)
        if child is None or child.state in (State.STOPPED, State.GAVE_UP, State.HELD):
            return
        logger.warning("stopping {} (pid {}): {}", name, self.pid(name), reason)
        if child.running is not None:
            child.running.stop(HOLD_STOP_TIMEOUT_S)
        self.metrics.up.labels(name).set(0)
        child.state = State.HELD
        child.restarted = True

    def _release(self, name: str, reason: str) -> None:
        """Start a held child again, fresh."""
        child = self._children.get(name)
        if child is None or child.state is not State.HELD:
            return
        logger.warning("starting {} again: {}", name, reason)
        child.state = State.WAITING
        child.restart_at = self._clock()

    def restart(self, name: str, reason: str) -> None:
        """Stop a child and start it again now, not as a failure of its own."""
        child = self._children[name]
        if child.state in (State.STOPPED, State.GAVE_UP, State.HELD):
            return
        logger.warning("restarting {}: {}", name, reason)
        if child.running is not None:
            child.running.stop()
        self.metrics.up.labels(name).set(0)
        child.state = State.WAITING
        child.restart_at = self._clock()
        child.restarted = True

    def stop(self, name: str) -> None:
        """Stop a child for good (no restart)."""
        child = self._children.get(name)
        if child is None or child.state is State.STOPPED:
            return
        child.state = State.STOPPED
        if child.running is not None:
            child.running.stop()
        self.metrics.up.labels(name).set(0)

    def stop_all(self) -> None:
        """Stop every child, the last started first."""
        for name in reversed(list(self._children)):
            try:
                self.stop(name)
            except Exception as exc:  # keep stopping the others
                logger.error("could not stop {}: {}", name, exc)
