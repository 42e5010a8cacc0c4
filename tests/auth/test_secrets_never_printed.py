"""A secret's value never reaches what a process prints: configuration errors (their text, the
`mgw` command's output), settings reprs, and logs (a traceback's variables, the readiness log).
URLs are shown with their password masked."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from core.config import ConfigError, load_settings
from core.observability.dependencies import Need
from core.observability.health import HealthChecker
from core.observability.logging import init_logging
from core.observability.probes import postgres_check
from core.redaction import redact_text, redact_url
from tests.conftest import ROOT

JWT_SECRET = "jwt-Leak-0123"  # too short: refused, and must not be shown
DB_PASSWORD = "db-Leak-4567"
REDIS_PASSWORD = "redis-Leak-89ab"
KAFKA_PASSWORD = "kafka-Leak-cdef"
OPENAI_KEY = "sk-openai-Leak-0000"
SECRETS = (JWT_SECRET, DB_PASSWORD, REDIS_PASSWORD, KAFKA_PASSWORD, OPENAI_KEY)

BAD_ENV = {
    "AUTH_JWT_SECRET": JWT_SECRET,
    # A wrong scheme: refused, and shown with its password masked.
    "DATABASE_URL": f"mysql://app:{DB_PASSWORD}@db.internal/media",
    "REDIS_URL": f"http://:{REDIS_PASSWORD}@cache.internal:6379/0",
    "KAFKA_BROKERS": f"app:{KAFKA_PASSWORD}@kafka.internal:9092",
    "OPENAI_API_KEY": OPENAI_KEY,
    "MGW_ENV_FILE": "/nonexistent/.env",
}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} printed in:\n{text}"


@pytest.fixture
def bad_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in BAD_ENV.items():
        monkeypatch.setenv(name, value)
    yield


def test_redact_url() -> None:
    assert redact_url("postgresql://app:pw@db:5432/media") == "postgresql://app:***@db:5432/media"
    assert redact_url("redis://:pw@cache:6379/0") == "redis://***@cache:6379/0"
    assert redact_url("rediss://pw@cache") == "rediss://***@cache"
    assert redact_url("postgresql://db/media") == "postgresql://db/media"
    assert redact_url("app:pw@db/media") == "***@db/media"
    assert (
        redact_text("connect to postgres://u:pw@h/d failed")
        == "connect to postgres://u:***@h/d failed"
    )


def test_configuration_error_names_each_variable_and_no_secret(bad_env: None) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert_no_secret(text)
    assert_no_secret(repr(caught.value))
    for name in ("AUTH_JWT_SECRET", "DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS"):
        assert name in text
    # Still useful: the user, host and scheme of a URL, masked where the password was.
    assert "mysql://app:***@db.internal/media" in text
    assert "http://***@cache.internal:6379/0" in text
    assert "a secret's value is never shown" in text


def test_settings_reprs_mask_passwords_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGW_ENV_FILE", "/nonexistent/.env")
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET * 4)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{DB_PASSWORD}@db.internal/media")
    monkeypatch.setenv("REDIS_URL", f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("QDRANT_API_KEY", KAFKA_PASSWORD)
    settings = load_settings()
    for text in (repr(settings), str(settings), f"{settings.postgres}", repr(settings.redis)):
        assert_no_secret(text)
    assert "postgresql://app:***@db.internal/media" in repr(settings)
    # The values are still there for the code that connects.
    assert settings.postgres.url is not None and DB_PASSWORD in settings.postgres.url
    assert settings.openai.api_key is not None
    assert settings.openai.api_key.get_secret_value() == OPENAI_KEY


def test_the_mgw_command_prints_no_secret() -> None:
    env = {**os.environ, **BAD_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "AUTH_JWT_SECRET" in output and "DATABASE_URL" in output
    assert_no_secret(output)


@pytest.mark.parametrize("fmt", ["pretty", "json"])
def test_logged_tracebacks_show_no_variables(fmt: str) -> None:
    """A traceback logged from a frame holding a URL with a password: the pretty format would
    print the frame's variables (loguru's diagnose) with the URL in clear."""
    stream = io.StringIO()
    init_logging("info", fmt, stream=stream)
    url = f"postgresql://app:{DB_PASSWORD}@db.internal/media"

    def connect(dsn: str) -> None:
        raise ConnectionRefusedError("connection refused")

    try:
        connect(url)
    except ConnectionRefusedError:
        logger.exception("cannot connect")
    finally:
        init_logging("info", "json")
    logged = stream.getvalue()
    assert "cannot connect" in logged and "ConnectionRefusedError" in logged
    assert_no_secret(logged)


async def test_readiness_logs_the_cause_masked_and_serves_a_short_reason() -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    url = f"postgresql://app:{DB_PASSWORD}@127.0.0.1:1/media"

    async def quotes_its_url() -> None:
        raise RuntimeError(f"cannot use {url}")

    try:
        checker = HealthChecker(
            {"postgres": Need.REQUIRED, "redis": Need.OPTIONAL},
            {"postgres": postgres_check(url, 1.0), "redis": quotes_its_url},
        )
        code, body = await checker.ready()
    finally:
        logger.remove(sink)
    assert code == 503
    assert body["components"]["postgres"]["error"] == "unreachable"
    assert body["components"]["redis"]["error"] == "failed (RuntimeError)"
    assert body["failing"] == ["postgres: unreachable", "redis: failed (RuntimeError)"]
    assert "127.0.0.1" not in str(body)
    assert_no_secret(str(body))
    # The log has the cause, the password masked.
    logged = "\n".join(lines)
    assert "readiness: postgres unreachable" in logged
    assert "postgresql://app:***@127.0.0.1:1/media" in logged
    assert_no_secret(logged)
