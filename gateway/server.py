"""Run the gateway under uvicorn, logging through our own sink, in one process or several."""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from core.config import Settings, load_settings
from core.observability.logging import init_logging
from core.observability.ops_server import inherited_socket
from gateway.app import create_app
from gateway.edge_protocol import limits_for, use_limits


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.gateway.host,
        "port": settings.gateway.port,
        "log_config": None,  # keep uvicorn from replacing our logging setup
        "access_log": False,  # CorrelationMiddleware logs each request with its id
        "lifespan": "on",
        "loop": "uvloop",
        # httptools with header/body deadlines and a connection cap (gateway/edge_protocol.py);
        # named by string so that the processes of --workers import it themselves.
        "http": "gateway.edge_protocol:EdgeHttpProtocol",
        "timeout_graceful_shutdown": 5,
        # The device WebSocket (docs/DEVICE_PROTOCOL.md): websockets' sans-I/O protocol closes
        # a frame over the limit with 1009 before it is buffered whole.
        "ws": "websockets-sansio",
        "ws_max_size": settings.socket.max_frame_bytes,
        "ws_per_message_deflate": settings.socket.compression,
        **forwarded_options(settings.gateway.forwarded_allow_ips),
    }


def forwarded_options(allow_ips: list[str]) -> dict[str, Any]:
    """uvicorn's forwarded-header trust, from GATEWAY_FORWARDED_ALLOW_IPS alone: uvicorn's own
    default believes X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS), so any local
    process, or a proxy on the host that passes the header through, could set the client
    address the rate limits key on. Empty: the headers are ignored."""
    if not allow_ips:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": list(allow_ips)}


def run_gateway(settings: Settings, workers: int | None = None) -> None:
    count = workers or settings.gateway.worker_count()
    # A socket handed over by `mgw up` (cli/ports.py) is served as it is: no bind, no race.
    inherited = inherited_socket(settings.gateway.listen_fd)
    if count == 1:
        init_logging(settings.log.level, settings.log.format, process="gateway")
        use_limits(limits_for(settings.gateway))
        server = uvicorn.Server(uvicorn.Config(create_app(settings), **_options(settings)))
        server.run(sockets=[inherited] if inherited is not None else None)
        if not server.started:  # uvicorn logged why (a bind error names the address)
            sys.exit(STARTUP_FAILURE)
        return
    init_logging(settings.log.level, settings.log.format, process="gateway-supervisor")
    # uvicorn's supervisor serves one listening socket from `count` processes, restarts one
    # that dies, and stops them all on SIGINT/SIGTERM; each process builds its app (and its
    # producer) from the environment it inherits.
    os.environ["GATEWAY_WORKERS"] = str(count)
    if inherited is None:
        uvicorn.run("gateway.server:worker_app", factory=True, workers=count, **_options(settings))
        return
    config = uvicorn.Config(
        "gateway.server:worker_app", factory=True, workers=count, **_options(settings)
    )
    Multiprocess(config, sockets=[inherited]).run()


def worker_app() -> FastAPI:
    """One worker process's app (uvicorn calls it in each process of --workers)."""
    settings = load_settings()
    init_logging(settings.log.level, settings.log.format, process=f"gateway-{os.getpid()}")
    use_limits(limits_for(settings.gateway))
    return create_app(settings)
