"""Schemathesis over the running gateway's OpenAPI document, every check on, finds nothing.

One gateway and one worker of every group serve three runs, one per kind of caller: a person's
token holding every scope (an admin, so that any user id in a path is theirs to act on), an API
key holding every scope, and nobody. What it proves: every status the gateway answers is
documented, a request the document forbids is refused and one it allows is accepted (bar the
rules across fields the document states in words: tests/edge/fuzz_rules.py), responses match
their schemas, Allow headers are right.

The seed is fixed so that a failure reproduces; MGW_FUZZ_SEED and MGW_FUZZ_EXAMPLES explore
further (`st replay` is not available: the database is per run).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.config import Settings
from gateway.auth.key_store import KeyStore
from gateway.auth.principal import ADMIN_ROLE, SCOPES
from tests.auth.helpers import bearer, user_token
from tests.conftest import ROOT, Isolated, Proc

pytestmark = pytest.mark.slow

SEED = os.environ.get("MGW_FUZZ_SEED", "20261202")
EXAMPLES = os.environ.get("MGW_FUZZ_EXAMPLES", "20")
# The event stream never ends: each request that opens one is cut after this, which the
# fuzzer tolerates; its status, headers and refusals are what is checked.
REQUEST_TIMEOUT_S = "2"
# The fuzzer sends thousands of requests as one caller; limits have tests of their own.
GATEWAY_ENV = {"RATE_LIMIT_ENABLED": "false"}


async def _callers(settings: Settings) -> dict[str, dict[str, str]]:
    async with KeyStore.open(settings) as store:
        _, key = await store.create("fuzzer", list(SCOPES), "enterprise")
    token = user_token(settings, scopes=list(SCOPES), roles=[ADMIN_ROLE])
    return {
        "token with every scope": bearer(token),
        "API key with every scope": {"X-API-Key": key},
        "no credentials": {},
    }


def _schemathesis(url: str, headers: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--request-timeout",
        REQUEST_TIMEOUT_S,
        "--no-color",
        # The caller's credential is the one --header sends. Left on, schemathesis would also
        # invent a value for every security scheme an operation lists (an Authorization and an
        # X-API-Key together, which is a 400) instead of only checking, with `ignored_auth`,
        # that each operation refuses requests without the credential it declares.
        "--generation-with-security-parameters",
        "false",
        *[arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")],
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.edge.fuzz_rules",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=workdir, env=env)


async def test_schemathesis_finds_nothing_for_any_caller(
    isolated: Isolated, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    # Its own database, topics and keys: the thousands of titles it writes stay out of the
    # counts of other tests.
    await asyncio.to_thread(spawn, "worker", "all", extra_env=isolated.env)
    gateway = await asyncio.to_thread(spawn, "gateway", extra_env={**isolated.env, **GATEWAY_ENV})
    reports: list[str] = []
    for caller, headers in (await _callers(isolated.settings)).items():
        done = await asyncio.to_thread(_schemathesis, gateway.url, headers, tmp_path)
        assert "Test cases:" in done.stdout, f"schemathesis did not run:\n{done.stderr}"
        if done.returncode != 0:
            reports.append(f"=== {caller}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    assert not reports, "\n".join(reports)
