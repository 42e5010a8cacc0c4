"""`mgw ingest`, `mgw ingest-report` and `mgw dlq replay` as a catalog producer's script uses
them: a command that did not do what was asked exits non-zero, and the report's filters take
what `mgw ingest` takes."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.conftest import Isolated
from tests.helpers import run_cli, wait_for

pytestmark = pytest.mark.slow


def item(item_id: str, **fields: object) -> dict[str, object]:
    return {
        "platform": "Max",
        "platform_item_id": item_id,
        "title": f"Report Test {item_id}",
        "content_type": "movie",
        "year": 2001,
        "source_updated_at": "2026-11-01T00:00:00Z",
        **fields,
    }


def write(path: Path, lines: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


async def test_ingest_exits_1_when_nothing_is_accepted_and_on_any_rejection_with_strict(
    isolated: Isolated, tmp_path: Path
) -> None:
    env = {**os.environ, **isolated.env}
    rejected = write(tmp_path / "bad.jsonl", [{"platform": "netflix"}, {"title": ""}])
    code, _, err = await run_cli("ingest", str(rejected), env=env)
    assert code == 1, err
    assert "0 accepted" in err and "2 rejected" in err and "nothing of" in err

    mixed = write(tmp_path / "mixed.jsonl", [item("mx-1"), {"title": ""}])
    code, _, err = await run_cli("ingest", str(mixed), env=env)
    assert code == 0, err  # the accepted item is published; the summary names the other
    code, _, err = await run_cli("ingest", "--strict", str(mixed), env=env)
    assert code == 1 and "1 line(s) rejected" in err, err


async def test_ingest_report_takes_the_platform_names_ingest_takes_and_refuses_unknown_kinds(
    spawn, isolated: Isolated, tmp_path: Path
) -> None:
    env = {**os.environ, **isolated.env}
    spawn("worker", "ingestion", extra_env=isolated.env)
    feed = write(
        tmp_path / "feed.jsonl",
        [item("rp-1", genres=["Xyzzy Plugh"], runtime_minutes=90)],
    )
    code, _, err = await run_cli("ingest", str(feed), env=env)
    assert code == 0, err
    assert "unknown_field" in err and "unknown_genre" in err

    async def mapped() -> bool:
        return bool(await isolated.pool.fetchval("SELECT count(*) FROM entity_mappings"))

    await wait_for(mapped, timeout=60, interval=0.2)
    for name in ("Max", "HBO Max", "hbo", "hbo_max"):
        code, out, err = await run_cli("ingest-report", "--platform", name, env=env)
        assert code == 0, err
        assert "rp-1" in out and "unknown_genre" in out, (name, out)
    code, out, _ = await run_cli(
        "ingest-report", "--platform", "Max", "--kind", "unknown_genre", env=env
    )
    assert code == 0 and "rp-1" in out

    code, _, err = await run_cli("ingest-report", "--kind", "bogus", env=env)
    assert code == 2 and "unknown warning kind 'bogus'" in err and "unknown_genre" in err
    # `mgw ingest` named this kind; the report says why it cannot list it instead of "none".
    code, _, err = await run_cli("ingest-report", "--kind", "unknown_field", env=env)
    assert code == 2 and "never reach the pipeline" in err, err


async def test_a_replay_that_replays_nothing_exits_1(isolated: Isolated) -> None:
    env = {**os.environ, **isolated.env}
    code, out, err = await run_cli(
        "dlq", "replay", "content.raw", "--reason", "processing_failed", env=env
    )
    assert code == 1, out + err
    assert "nothing replayed" in err
