"""A running stack (`mgw up`, tests/e2e/up_stack.py) with a small catalog, and Debian's
Chromium driven by Playwright: never a downloaded browser (docs/WEB_APP.md, "Tests").

WEBAPP_TEST_GATEWAY (with WEBAPP_TEST_KEY, the stack's dev API key) points the tests at a stack
already running, to iterate on the app without starting one per run."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.up_stack import running_up

CHROMIUM = os.environ.get("WEBAPP_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"


def item(pid: str, title: str, year: int, genres: list[str], runtime: int, **offer: object) -> dict:
    availability = {"availability_type": "subscription", "regions": ["US"], **offer}
    return {
        "platform_item_id": pid,
        "content_type": "movie",
        "title": title,
        "year": year,
        "genres": genres,
        "runtime": runtime,
        "description": f"{title}, a film of {year}.",
        "source_updated_at": "2026-11-01T00:00:00Z",
        "availability": [availability],
    }


CATALOG = [
    item("gbh", "The Grand Budapest Hotel", 2014, ["comedy", "drama"], 99),
    item("heat", "Heat", 1995, ["crime", "thriller"], 170),
    item(
        "shrek",
        "Shrek",
        2001,
        ["comedy", "animation"],
        90,
        availability_type="rent",
        price_cents=399,
        currency="USD",
    ),
    item(
        "padd2",
        "Paddington 2",
        2017,
        ["comedy", "family"],
        104,
        availability_type="buy",
        price_cents=999,
        currency="USD",
        available_until="2027-06-30T00:00:00Z",
    ),
    item("nightwalk", "Night Walk", 2021, ["documentary"], 45),
    item("tinyfilm", "Tiny Film", 2020, ["comedy"], 12),
]


@dataclass
class Stack:
    gateway: str
    key: str
    ids: dict[str, str] = field(default_factory=dict)
    fresh: bool = True  # a stack of this run's own, not WEBAPP_TEST_GATEWAY's

    def user(self) -> str:
        """A user of its own per use; on a fresh stack the first is alice, so the screenshots
        show a name rather than a random one."""
        if self.fresh:
            self.fresh = False
            return "alice"
        return f"u{uuid.uuid4().hex[:10]}"


def seed(gateway: str, key: str) -> dict[str, str]:
    """The catalog ingested, stored and suggested; its canonical ids by platform item id."""
    answer = httpx.post(
        f"{gateway}/api/v1/ingest/netflix/items",
        json={"items": CATALOG},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert answer.status_code in (200, 202), answer.text
    ids: dict[str, str] = {}
    deadline = time.monotonic() + 90
    while len(ids) < len(CATALOG):
        assert time.monotonic() < deadline, f"catalog not stored: {ids}"
        for entry in CATALOG:
            pid = entry["platform_item_id"]
            if pid in ids:
                continue
            found = httpx.get(
                f"{gateway}/api/v1/ingest/netflix/items/{pid}", headers={"X-API-Key": key}
            )
            if found.status_code == 200:
                ids[pid] = found.json()["canonical_id"]
        time.sleep(0.3)
    # The suggestion index is rebuilt by a 15 s timer of the discovery worker.
    while True:
        assert time.monotonic() < deadline, "the suggestion index never held the catalog"
        said = httpx.get(f"{gateway}/api/v1/search/suggest", params={"q": "tiny fil"}).json()
        if said["suggestions"]:
            return ids
        time.sleep(0.5)


# Module scope, not session: Playwright's sync API runs an event loop in the main thread while
# it is open, and every asyncio test after it would find that loop running; and the stack's
# `mgw up` must not outlive these tests.
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if os.environ.get("WEBAPP_TEST_GATEWAY"):
        gateway, key = os.environ["WEBAPP_TEST_GATEWAY"], os.environ["WEBAPP_TEST_KEY"]
        yield Stack(gateway, key, seed(gateway, key), fresh=False)
        return
    with running_up(tmp_path_factory.mktemp("webapp"), env={"KAFKA_TOPIC_PREFIX": "web"}) as up:
        yield Stack(up.gateway, up.key, seed(up.gateway, up.key))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()
