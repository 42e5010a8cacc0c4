"""Settings precedence, defaults and the error report of core.config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import (
    ENV_FILE_VARIABLE,
    ConfigError,
    KafkaSettings,
    PostgresSettings,
    RedisSettings,
    Settings,
    get_settings,
    load_settings,
)
from core.redaction import redact_url

# Every variable a section could read: the developer's shell must not leak into these tests.
_PREFIXES = (
    "KAFKA_",
    "POSTGRES_",
    "REDIS_",
    "QDRANT_",
    "EMBEDDING_",
    "OPENAI_",
    "PUBNUB_",
    "LOG_",
    "GATEWAY_",
    "METRICS_",
)
_ALIASES = ("DATABASE_URL", "REDIS_URL", ENV_FILE_VARIABLE)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith(_PREFIXES) or name.upper() in _ALIASES:
            monkeypatch.delenv(name, raising=False)
    # The default .env is relative to the working directory: an empty one means none is read.
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def write_env(path: Path, **values: str) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return excinfo.value.problems


# --- defaults -----------------------------------------------------------------------------


def test_defaults_without_env_or_file() -> None:
    settings = load_settings()

    assert isinstance(settings, Settings)
    assert settings.kafka.brokers == ["127.0.0.1:9092"]
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.kafka.topic_prefix == "mgw"
    assert settings.kafka.replication_factor == 1
    assert settings.postgres.url is None
    assert settings.redis.url is None
    assert settings.redis.key_prefix == "mgw"
    assert settings.log.format == "json"
    assert settings.log.level.startswith("info,")
    assert "aiokafka=warning" in settings.log.level
    assert settings.gateway.port == 8080
    assert settings.metrics.port == 9090
    assert settings.embedding.provider == "local"
    assert settings.embedding.dimension == 384
    assert settings.pubnub.ssl is True


def test_missing_env_file_falls_back_to_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "does-not-exist.env")

    assert settings.gateway.port == 8080


# --- environment values -------------------------------------------------------------------


def test_environment_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "staging.mgw")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/mgw")
    monkeypatch.setenv("REDIS_URL", "rediss://cache:6380/0")
    monkeypatch.setenv("LOG_FORMAT", "pretty")
    monkeypatch.setenv("LOG_LEVEL", "warning,agents.sync=debug")
    monkeypatch.setenv("GATEWAY_PORT", "8443")
    monkeypatch.setenv("METRICS_PORT", "0")
    monkeypatch.setenv("EMBEDDING_DIMENSION", "1536")

    settings = load_settings()

    assert settings.kafka.topic_prefix == "staging.mgw"
    assert settings.postgres.url == "postgresql://u:p@db:5432/mgw"
    assert settings.redis.url == "rediss://cache:6380/0"
    assert settings.log.format == "pretty"
    assert settings.log.level == "warning,agents.sync=debug"
    assert settings.gateway.port == 8443
    assert settings.metrics.port == 0
    assert settings.embedding.dimension == 1536


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a:1, b:2", ["a:1", "b:2"]),
        ("a:1,b:2,c:3", ["a:1", "b:2", "c:3"]),
        (
            " kafka-0.internal:9092 ,, kafka-1.internal:9093 , ",
            ["kafka-0.internal:9092", "kafka-1.internal:9093"],
        ),
        ("[::1]:9092", ["[::1]:9092"]),
    ],
)
def test_broker_list_is_comma_split_and_trimmed(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", raw)

    kafka = load_settings().kafka

    assert kafka.brokers == expected
    assert kafka.bootstrap == ",".join(expected)


def test_postgres_url_is_read_from_database_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Operators know DATABASE_URL; the prefixed name must not silently take part.
    monkeypatch.setenv("POSTGRES_URL", "postgresql://ignored/db")

    assert load_settings().postgres.url is None

    monkeypatch.setenv("DATABASE_URL", "postgres://used/db")
    assert load_settings().postgres.url == "postgres://used/db"


# --- .env file and precedence -------------------------------------------------------------


def test_default_env_file_in_working_directory_is_read(isolated_env: Path) -> None:
    write_env(
        isolated_env / ".env",
        KAFKA_BROKERS="f1:9092,f2:9092",
        DATABASE_URL="postgresql://from-file/db",
        GATEWAY_PORT="9000",
    )

    settings = load_settings()

    assert settings.kafka.brokers == ["f1:9092", "f2:9092"]
    assert settings.postgres.url == "postgresql://from-file/db"
    assert settings.gateway.port == 9000


def test_environment_beats_env_file_which_beats_default(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    env_file = write_env(
        isolated_env / "custom.env",
        GATEWAY_PORT="9000",
        DATABASE_URL="postgresql://from-file/db",
        KAFKA_BROKERS="file:1",
        LOG_FORMAT="pretty",
    )
    monkeypatch.setenv("GATEWAY_PORT", "7000")
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env/db")

    settings = load_settings(env_file)

    # environment over .env
    assert settings.gateway.port == 7000
    assert settings.postgres.url == "postgresql://from-env/db"
    # .env over default
    assert settings.kafka.brokers == ["file:1"]
    assert settings.log.format == "pretty"
    # default where neither says anything
    assert settings.metrics.port == 9090


def test_env_file_variable_selects_the_file(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    write_env(isolated_env / ".env", GATEWAY_PORT="1111")
    chosen = write_env(isolated_env / "chosen.env", GATEWAY_PORT="2222")
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(chosen))

    assert load_settings().gateway.port == 2222


def test_env_file_argument_beats_env_file_variable(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setenv(
        ENV_FILE_VARIABLE, str(write_env(isolated_env / "a.env", GATEWAY_PORT="1111"))
    )
    explicit = write_env(isolated_env / "b.env", GATEWAY_PORT="2222")

    assert load_settings(explicit).gateway.port == 2222
    assert load_settings(str(explicit)).gateway.port == 2222


def test_get_settings_reads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "8001")
    first = get_settings()
    monkeypatch.setenv("GATEWAY_PORT", "8002")

    assert get_settings() is first
    assert first.gateway.port == 8001


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("KAFKA_BROKERS", "nohost", "'nohost' is not host:port"),
        ("KAFKA_BROKERS", ":9092", "':9092' is not host:port"),
        ("KAFKA_BROKERS", "good:1,bad:port", "'bad:port' is not host:port"),
        ("KAFKA_BROKERS", " , ", "at least one host:port is required"),
        ("KAFKA_TOPIC_PREFIX", "bad prefix!", "should match pattern"),
        ("KAFKA_REPLICATION_FACTOR", "0", "greater than or equal to 1"),
        ("DATABASE_URL", "mysql://u@h/db", "must start with postgresql://"),
        ("REDIS_URL", "http://cache:6379", "must start with redis://"),
        ("GATEWAY_PORT", "eighty", "valid integer"),
        ("GATEWAY_PORT", "70000", "less than or equal to 65535"),
        ("METRICS_PORT", "-1", "greater than or equal to 0"),
        ("LOG_FORMAT", "xml", "'json' or 'pretty'"),
        ("LOG_LEVEL", "info,x=loud", "unknown level 'loud'"),
        ("LOG_LEVEL", "info,=debug", "module name missing"),
        ("LOG_LEVEL", "verbose", "unknown level 'verbose'"),
        ("EMBEDDING_PROVIDER", "cohere", "'local' or 'openai'"),
        ("PUBNUB_SSL", "maybe", "valid boolean"),
    ],
)
def test_bad_variable_is_named_with_reason_and_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as excinfo:
        load_settings()

    [problem] = problems_of(excinfo)
    assert problem.startswith(f"{variable}: ")
    assert reason in problem
    # A bare userinfo may be a password (redis://secret@host): the value is shown masked.
    assert problem.endswith(f"(got {redact_url(value)!r})")
    assert problem in str(excinfo.value)


def test_bad_value_in_env_file_is_named_too(isolated_env: Path) -> None:
    write_env(isolated_env / ".env", DATABASE_URL="sqlite:///x.db")

    with pytest.raises(ConfigError) as excinfo:
        load_settings()

    assert problems_of(excinfo) == [
        "DATABASE_URL: must start with postgresql:// (or postgres://) (got 'sqlite:///x.db')"
    ]


def test_all_problems_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "nohost")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "a b")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    monkeypatch.setenv("GATEWAY_PORT", "abc")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("REDIS_URL", "redis://fine:6379")  # a good value is not reported

    with pytest.raises(ConfigError) as excinfo:
        load_settings()

    problems = problems_of(excinfo)
    named = sorted(problem.split(":", 1)[0] for problem in problems)
    assert named == [
        "DATABASE_URL",
        "GATEWAY_PORT",
        "KAFKA_BROKERS",
        "KAFKA_TOPIC_PREFIX",
        "LOG_FORMAT",
    ]
    # One line per problem under a heading, so an operator sees every fix needed in one go.
    lines = str(excinfo.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert [line.strip() for line in lines[1:]] == problems


def test_config_error_is_a_value_error() -> None:
    error = ConfigError(["A: bad (got 'x')", "B: worse (got 'y')"])

    assert isinstance(error, ValueError)
    assert str(error) == "invalid configuration:\n  A: bad (got 'x')\n  B: worse (got 'y')"


def test_env_names_follow_prefix_or_alias() -> None:
    assert KafkaSettings.env_name("topic_prefix") == "KAFKA_TOPIC_PREFIX"
    assert PostgresSettings.env_name("url") == "DATABASE_URL"
    assert PostgresSettings.env_name("pool_max") == "POSTGRES_POOL_MAX"
    assert RedisSettings.env_name("url") == "REDIS_URL"


# --- require_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "variable"),
    [(PostgresSettings, "DATABASE_URL"), (RedisSettings, "REDIS_URL")],
)
def test_require_url_names_the_missing_variable(
    section: type[PostgresSettings] | type[RedisSettings], variable: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        section().require_url()

    [problem] = problems_of(excinfo)
    assert problem.startswith(f"{variable}: not set")
    assert "mgw up" in problem


def test_require_url_returns_the_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/mgw")
    monkeypatch.setenv("REDIS_URL", "unix:///run/redis.sock")

    settings = load_settings()

    assert settings.postgres.require_url() == "postgresql://u@db/mgw"
    assert settings.redis.require_url() == "unix:///run/redis.sock"


# --- `mgw up`'s own defaults ----------------------------------------------------------------


def test_up_defaults_fill_only_what_nobody_set(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    from cli.up import EMBEDDED_PARTITIONS_MAX, UP_GATEWAY_WORKERS, _up_defaults

    assert load_settings().kafka.topic_partitions_max is None  # production: the catalog's
    assert _up_defaults(load_settings(), embedded_broker=True) == {
        "GATEWAY_WORKERS": str(UP_GATEWAY_WORKERS),
        "KAFKA_TOPIC_PARTITIONS_MAX": str(EMBEDDED_PARTITIONS_MAX),
    }
    # A broker of yours keeps the catalog's partition counts.
    assert _up_defaults(load_settings(), embedded_broker=False) == {
        "GATEWAY_WORKERS": str(UP_GATEWAY_WORKERS)
    }
    # What the .env file or the environment says stands.
    monkeypatch.setenv(
        ENV_FILE_VARIABLE, str(write_env(isolated_env / "up.env", GATEWAY_WORKERS="3"))
    )
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS_MAX", "4")
    settings = load_settings()
    assert settings.gateway.worker_count() == 3 and settings.kafka.partitions(8) == 4
    assert settings.kafka.partitions(1) == 1
    assert _up_defaults(settings, embedded_broker=True) == {}
