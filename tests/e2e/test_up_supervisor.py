"""`mgw up` as a supervisor (issue 9): a killed worker or Redis comes back by itself and nothing
accepted is lost; Ctrl-C drains the backlog before the in-memory broker stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from agents.enrichment.store import CLAIM_LEASE_S
from agreements.read_model import STATE_READY, document_key, state_key
from core.embedded import start_postgres
from devtools.sample_catalog import SampleCatalog
from tests.conftest import ROOT
from tests.e2e.up_stack import (
    Up,
    no_zombies,
    progress,
    query,
    running_up,
    wait_until,
    write_catalog,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running_up(tmp_path) as stack:
        yield stack


def assert_ground_truth(url: str, sample: SampleCatalog, accepted: int, titles: int) -> None:
    """Every accepted item mapped once, to the one canonical title of its true title."""
    assert progress(url)[0] == accepted
    assert query(url, "SELECT count(*) AS n FROM content")[0]["n"] == titles
    by_title: dict[int, set[uuid.UUID]] = {}
    for row in query(url, "SELECT platform, platform_item_id, canonical_id FROM entity_mappings"):
        truth = sample.truth[f"{row['platform']}:{row['platform_item_id']}"]
        by_title.setdefault(truth, set()).add(row["canonical_id"])
    assert len(by_title) == titles
    assert all(len(ids) == 1 for ids in by_title.values())


def test_worker_killed_twice_mid_catalog_is_restarted_and_nothing_is_lost(
    up: Up, tmp_path: Path
) -> None:
    # ~2,000 items (1,200 titles, listed on one to three platforms each).
    sample, accepted, titles = write_catalog(tmp_path / "catalog.jsonl", 1200, seed=21)
    url = up.stack["DATABASE_URL"]
    before = up.children()
    assert len(before) == 5, before
    ingest = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", str(tmp_path / "catalog.jsonl")],
        cwd=ROOT,
        env={**up.env, "MGW_STACK_FILE": str(up.data_dir / "stack.env")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    # First kill while ingestion maps items, the second while the new worker enriches titles.
    wait_until(lambda: progress(url)[0] > 0, 30, "ingestion to start")
    os.kill(before["worker"], signal.SIGKILL)
    killed_at = progress(url)
    assert killed_at[0] < accepted, "ingestion finished before the kill: no drill"
    wait_until(
        lambda: up.children().get("worker", before["worker"]) != before["worker"], 10, "a worker"
    )
    second = up.children()["worker"]
    wait_until(lambda: progress(url) > killed_at, 30, "the restarted worker to work", 0.2)
    assert progress(url)[1] < titles, "enrichment finished before the second kill"
    os.kill(second, signal.SIGKILL)
    killed_db_time = query(url, "SELECT now() AS t")[0]["t"]
    _, err = ingest.communicate(timeout=60)
    assert ingest.returncode == 0, err
    assert f"{accepted} accepted" in err.decode()

    def leased_by_the_killed() -> int:
        # Titles a killed worker had claimed for enrichment: their claim must expire
        # (agents/enrichment/store.py CLAIM_LEASE_S) before another worker takes them.
        # Kept, not lost: the sweep enriches them then.
        return query(
            url,
            "SELECT count(*) AS n FROM content c JOIN enrichment_claims k USING (canonical_id) "
            "WHERE (c.enriched_version IS NULL OR c.enriched_version < c.updated_at) "
            "AND k.version >= c.updated_at AND k.claimed_until > now() "
            f"AND k.claimed_until <= '{killed_db_time.isoformat()}'::timestamptz "
            f"+ interval '{CLAIM_LEASE_S} seconds'",
        )[0]["n"]

    def caught_up() -> bool:
        mapped, enriched = progress(url)
        return mapped >= accepted and enriched + leased_by_the_killed() >= titles

    try:
        wait_until(caught_up, 75, "the pipeline to catch up after the kills", 0.5)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: (mapped, enriched) {progress(url)} of {(accepted, titles)}"
        ) from None
    assert_ground_truth(url, sample, accepted, titles)
    leased = leased_by_the_killed()
    assert progress(url)[1] + leased == titles
    print(f"enriched {progress(url)[1]} of {titles}; {leased} wait for a killed worker's lease")
    after = up.children()
    for service in ("broker", "postgres", "redis", "gateway"):
        assert after[service] == before[service], f"{service} was restarted"
    assert after["worker"] not in (before["worker"], second)
    # A restart counts once the new worker is ready, which the catch-up need not wait for.
    wait_until(
        lambda: up.metric("mgw_supervisor_restarts_total", "worker") == 2,
        30,
        "the second restart to be counted",
    )
    assert up.metric("mgw_supervisor_child_exits_total", "worker") == 2
    assert up.metric("mgw_supervisor_child_exits_total", "broker") == 0
    assert "worker (pid {}) exited with code -9".format(before["worker"]) in up.log()
    no_zombies(up)


def test_redis_killed_comes_back_and_the_dev_key_works_again_without_a_command(up: Up) -> None:
    before = up.children()
    redis_port = up.stack["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]

    def post(canonical_id: str) -> int:
        body = {
            "canonical_id": canonical_id,
            "content_type": "movie",
            "title": "After Redis",
            "genres": ["drama"],
            "updated_at": "2026-11-01T00:00:00Z",
        }
        try:
            return httpx.post(
                f"{up.gateway}/api/v1/content",
                json=body,
                headers={"X-API-Key": up.key},
                timeout=5,
            ).status_code
        except httpx.HTTPError:
            return 0

    stored = str(uuid.uuid4())
    assert post(stored) == 202
    wait_until(
        lambda: httpx.get(f"{up.gateway}/api/v1/content/{stored}").status_code == 200,
        20,
        "the title in the read model",
        0.2,
    )
    os.kill(before["redis"], signal.SIGKILL)
    took = wait_until(lambda: post(str(uuid.uuid4())) == 202, 10, "a 202 with the dev key", 0.2)
    after = up.children()
    assert after["redis"] != before["redis"]
    assert not psutil.pid_exists(before["redis"])  # reaped
    # Same port (redis-server shows it in its process title): the stack file stays right.
    assert f":{redis_port}" in " ".join(psutil.Process(after["redis"]).cmdline())
    for other in ("broker", "postgres", "worker", "gateway"):
        assert after[other] == before[other], f"{other} was restarted"
    assert up.metric("mgw_supervisor_restarts_total", "redis") == 1
    # The read model comes back too (the worker's guard rebuilds it from PostgreSQL), read
    # straight from Redis: a GET would also load the title on a miss.
    prefix = up.stack.get("REDIS_KEY_PREFIX", "mgw")
    client = redis.Redis.from_url(up.stack["REDIS_URL"])
    try:
        wait_until(
            lambda: (
                client.get(state_key(prefix)) == STATE_READY.encode()
                and client.exists(document_key(prefix, stored)) == 1
            ),
            25,
            "the read model rebuilt",
            0.5,
        )
    finally:
        client.close()
    assert "mirrored 1 live key(s) from PostgreSQL" in up.log()
    print(f"202 again {took:.1f} s after the kill")
    no_zombies(up)


def drained_pipeline(data_dir: Path) -> tuple[int, int]:
    with start_postgres(data_dir / "postgres") as pg:
        return progress(pg.url)


def test_ctrl_c_during_a_backlog_drains_before_stopping(up: Up, tmp_path: Path) -> None:
    _, accepted, titles = write_catalog(tmp_path / "catalog.jsonl", 600, seed=5)
    done = up.mgw("ingest", str(tmp_path / "catalog.jsonl"))
    assert f"{accepted} accepted" in done.stderr
    assert up.stop() == 0
    log = up.log()
    assert "draining" in log and "events left:" in log, log[-3000:]
    assert "drained: every accepted event is processed (0 events left)." in log
    assert log.index("the gateway first") < log.index("drained:")
    # Every accepted item mapped and every title enriched before the broker stopped.
    assert drained_pipeline(up.data_dir) == (accepted, titles)


def test_a_second_ctrl_c_stops_at_once_and_says_what_it_leaves(up: Up, tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog.jsonl", 600, seed=6)
    up.mgw("ingest", str(tmp_path / "catalog.jsonl"))
    up.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "events left:" in up.log(), 20, "the drain to show a backlog", 0.1)
    up.proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    assert up.proc.wait(30) == 130
    assert time.monotonic() - began < 20
    left = re.search(r"stopping without draining: ([\d,]+) events? left", up.log())
    assert left, up.log()[-3000:]
    assert int(left.group(1).replace(",", "")) > 0
    assert "they are lost" in up.log()
