"""`mgw gateway --workers 2`: one port served by two processes, each with its own producer,
and all of them gone after one SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import psutil

from core.config import Settings
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
    assert not [
        p.cmdline() for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]
