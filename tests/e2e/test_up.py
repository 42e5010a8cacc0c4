"""`mgw up` as a new user runs it: everything up, a POST stored, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from cli.auth_commands import DEV_KEY_NAME
from core.embedded import free_port
from tests.conftest import ROOT
from tests.helpers import wait_for_up_banner

pytestmark = pytest.mark.slow


def test_up_serves_a_post_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "QDRANT_URL"}
    }
    env.update({"MGW_ENV_FILE": "/nonexistent/.env", "KAFKA_TOPIC_PREFIX": "up"})
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "up",
            "--data-dir",
            str(tmp_path / ".mgw"),
            "--gateway-port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        text = wait_for_up_banner(up, tmp_path / "up.log", 90)
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 5  # broker, postgres, redis, worker, gateway
        key = re.search(r"(mgw_[A-Za-z0-9_-]+)", text)
        assert key, f"no dev API key in the banner:\n{text}"
        cid = str(uuid.uuid4())
        body = {
            "canonical_id": cid,
            "content_type": "movie",
            "title": "Up Test",
            "genres": ["drama"],
            "updated_at": "2026-11-01T00:00:00Z",
        }
        resp = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/content",
            json=body,
            headers={"X-API-Key": key.group(1), "X-Request-ID": "up-test-1"},
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["offset"] >= 0

        def stored() -> bool:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/content/{cid}").status_code == 200

        deadline = time.monotonic() + 20
        while not stored():
            assert time.monotonic() < deadline, "the posted title never reached the read model"
            time.sleep(0.3)

        # The read can be answered (from PostgreSQL, over request/reply) before the worker
        # has written its log line, and the supervisor relays each child's output: poll.
        def correlated() -> list[str]:
            text = (tmp_path / "up.log").read_text()
            return [line for line in text.splitlines() if "up-test-1" in line]

        deadline = time.monotonic() + 20
        while not any("stored" in line for line in correlated()):
            assert time.monotonic() < deadline, f"no 'stored' log line:\n{correlated()}"
            time.sleep(0.3)
        assert any("gateway" in line for line in correlated())

        # Another terminal, no variable set by hand: every command finds the stack.
        stack_file = tmp_path / ".mgw" / "stack.env"
        assert stack_file.stat().st_mode & 0o077 == 0  # holds the dev key: owner only
        other = {**env, "MGW_STACK_FILE": str(stack_file)}

        def mgw(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "cli.main", *args],
                cwd=ROOT,
                env=other,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"mgw {' '.join(args)}:\n{done.stdout}{done.stderr}"
            return done.stdout

        assert mgw("stack", "--key").strip() == key.group(1)
        # `mgw stack` shows every address the banner shows, and a process answers on each.
        shown = mgw("stack")
        banner = text[text.index("Media Gateway is up") :]
        urls = set(re.findall(r"http://127\.0\.0\.1:\d+", banner))
        assert len(urls) >= 4, banner  # gateway, worker, gateway ops (one per process), supervisor
        for url in urls:
            assert url in shown, f"{url} is in the banner, not in `mgw stack`:\n{shown}"
            assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200, url
        assert DEV_KEY_NAME in mgw("keys", "list", "--json")
        assert "read model ready" in mgw("readmodel", "rebuild")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0
    assert not (tmp_path / ".mgw" / "stack.env").exists()
    time.sleep(0.5)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after Ctrl-C: {[c.cmdline() for c in left]}"
