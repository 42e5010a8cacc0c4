"""`mgw gateway --workers 2`: one port served by two processes, each with its own producer and
its own ops port, and all of them gone after one SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from core.config import Settings
from core.stack_file import PORTS_DIR_VARIABLE, recorded_ports
from tests.auth.helpers import auth_headers
from tests.conftest import Proc


def test_two_processes_serve_one_port_and_stop_together(
    spawn: Callable[..., Proc], settings: Settings
) -> None:
    gateway = spawn("gateway", "--workers", "2", extra_env={"RATE_LIMIT_ENABLED": "false"})
    supervisor = psutil.Process(gateway.popen.pid)
    children = supervisor.children(recursive=True)
    workers = [p for p in children if "--multiprocessing-fork" in p.cmdline()]
    assert len(workers) == 2, [p.cmdline() for p in children]

    headers = auth_headers(settings)
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10.0) as client:
        for i in range(20):
            answer = client.post(
                "/api/v1/content",
                json={
                    "canonical_id": f"00000000-0000-4000-8000-{i:012d}",
                    "content_type": "movie",
                    "title": f"Workers {i}",
                    "genres": ["drama"],
                    "updated_at": "2026-11-01T00:00:00Z",
                },
            )
            assert answer.status_code == 202, answer.text
            assert answer.json()["offset"] >= 0

    assert gateway.stop(signal.SIGTERM, timeout=30) == 0
    # The supervisor has exited; a child it stopped may still be finishing its exit (a worker
    # flushing its producer, multiprocessing's resource tracker seeing its pipe close).
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not [p.cmdline() for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _a_free_port_whose_next_is_held() -> tuple[int, socket.socket]:
    # The port after a free one may belong to another test's process: try again until both fit.
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
            other = socket.socket()
            try:
                other.bind(("127.0.0.1", base + 1))
            except OSError:
                other.close()
                continue
        other.listen()
        return base, other
    raise AssertionError("no free port whose next port is free in 50 tries")


def test_every_process_serves_an_ops_port_when_one_of_the_range_is_taken(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    # Another program holds the second port of the range METRICS_PORT .. METRICS_PORT+1.
    base, other = _a_free_port_whose_next_is_held()
    with other:
        gateway = spawn(
            "gateway",
            "--workers",
            "2",
            extra_env={"METRICS_PORT": str(base), PORTS_DIR_VARIABLE: str(tmp_path / "run")},
        )

        def ops_ports() -> list[int]:
            said = re.findall(
                r"ops endpoints on http://127\.0\.0\.1:(\d+)", gateway.log_path.read_text()
            )
            return sorted(int(port) for port in said)

        deadline = time.monotonic() + 30
        while len(ops_ports()) < 2:
            assert time.monotonic() < deadline, gateway.log_lines()[-30:]
            time.sleep(0.2)
        ports = ops_ports()
        assert base in ports and base + 1 not in ports and len(set(ports)) == 2
        # What `mgw up` reads to show them: exactly the ports the processes hold.
        assert recorded_ports(tmp_path / "run", "gateway-ops") == ports
        for port in ports:
            assert "http_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert any(f"ops ports {base}, {base + 1}" in line for line in gateway.log_lines())
        assert gateway.stop(signal.SIGTERM, timeout=30) == 0
    assert recorded_ports(tmp_path / "run", "gateway-ops") == []
