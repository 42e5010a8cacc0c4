"""`mgw up` serves search: a title posted as a new user would is found by a query in words."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.embedded import free_port
from tests.conftest import ROOT
from tests.helpers import wait_for_up_banner

pytestmark = pytest.mark.slow

HEAT = {
    "canonical_id": "6f1c2a8e-1111-4a4a-9b9b-123456789abc",
    "content_type": "movie",
    "title": "Heat",
    "genres": ["crime", "thriller"],
    "release_year": 1995,
    "description": "A group of professional bank robbers start to feel the heat from police "
    "when they unknowingly leave a clue at their latest heist.",
    "availability": [
        {"platform": "netflix", "availability_type": "subscription", "regions": ["US"]}
    ],
    "updated_at": "2026-11-01T00:00:00Z",
}


def test_up_serves_search(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "QDRANT_URL"}
    }
    env.update({"MGW_ENV_FILE": "/nonexistent/.env", "KAFKA_TOPIC_PREFIX": "upsearch"})
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
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
    base = f"http://127.0.0.1:{port}"
    try:
        text = wait_for_up_banner(up, log_path, 120)
        key = re.search(r"(mgw_[A-Za-z0-9_-]+)", text)
        assert key, "no dev API key in the banner"
        posted = httpx.post(f"{base}/api/v1/content", json=HEAT, headers={"X-API-Key": key[1]})
        assert posted.status_code == 202, posted.text

        query = {"q": "a bank heist thriller from the 90s on netflix"}
        deadline = time.monotonic() + 60
        while True:
            found = httpx.get(f"{base}/api/v1/search", params=query, timeout=10)
            assert found.status_code == 200, found.text
            titles = [r["title"] for r in found.json()["results"]]
            # The title is searchable once enrichment embedded it; until then a miss is
            # answered (without it) and not cached, as a strategy found nothing to rank.
            if titles == ["Heat"] and found.json()["strategies_failed"] == []:
                break
            assert time.monotonic() < deadline, found.json()
            time.sleep(1.0)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
