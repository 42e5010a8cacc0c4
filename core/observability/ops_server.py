"""The small HTTP server every non-HTTP process runs: health and Prometheus metrics."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadyCheck = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


async def _always_ready() -> tuple[int, dict[str, Any]]:
    return 200, {"status": "healthy", "components": {}}


def inherited_socket(fd: int | None) -> socket.socket | None:
    """The listening socket a parent handed over as file descriptor `fd` (cli/ports.py)."""
    return None if fd is None else socket.socket(fileno=fd)


class OpsServer:
    """Serves on host:port, or on `sock` when given (a listening socket handed over).
    `before_metrics` refreshes gauges that are cheap to read at scrape time."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: ReadyCheck | None = None,
        sock: socket.socket | None = None,
        before_metrics: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sock = sock
        self._before_metrics = before_metrics
        self._ready = ready or _always_ready
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site: web.BaseSite = (
            web.SockSite(self._runner, self._sock)
            if self._sock is not None
            else web.TCPSite(self._runner, self._host, self._port)
        )
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            # asyncio's message names the address; say what it is for and what to do.
            raise OSError(
                exc.errno,
                f"cannot serve /metrics and /health on {self._host}:{self._port} ({exc}); "
                "set METRICS_PORT to a free port",
            ) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
        logger.info(
            "ops endpoints on http://{}:{} (/health/live, /health/ready, /metrics)",
            self._host,
            self.bound_port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        status, body = await self._ready()
        return web.json_response(body, status=status)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._before_metrics is not None:
            try:
                await self._before_metrics()
            except Exception as exc:  # the last values are still worth serving
                logger.warning("could not refresh gauges before a scrape: {!r}", exc)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
