"""One typed settings tree for every process.

Values come from the environment, then from a `.env` file, then from defaults (the
environment wins). Each section reads its own flat variables (`KAFKA_BROKERS`, not
`KAFKA__BROKERS`) because those are the names operators already know.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.redaction import MASK, redact_text, redact_url

ENV_FILE_VARIABLE = "MGW_ENV_FILE"
# A browser origin: scheme, host, optional port; nothing after (no path, no trailing slash).
_ORIGIN = r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?"


class ConfigError(ValueError):
    """Raised with one line per bad variable: its name, the reason and the value seen (never a
    secret's value, and URLs with their password masked: the message reaches logs and
    terminals)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def _env_file() -> str:
    return os.environ.get(ENV_FILE_VARIABLE, ".env")


def secret_value(secret: SecretStr | None) -> str | None:
    """The value of an optional secret, for the one call that needs it in clear."""
    return None if secret is None else secret.get_secret_value()


class _Section(BaseSettings):
    """A settings section with a flat environment prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8")

    # Variables that do not follow the section prefix (e.g. DATABASE_URL).
    aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def env_name(cls, field: str) -> str:
        if field in cls.aliases:
            return cls.aliases[field]
        return (cls.model_config.get("env_prefix", "") + field).upper()

    @classmethod
    def is_secret(cls, field: str) -> bool:
        info = cls.model_fields.get(field)
        return info is not None and "SecretStr" in str(info.annotation)

    def __repr_args__(self) -> Any:
        # repr() and str() of settings reach logs and tracebacks: URLs with their password
        # masked (secrets are SecretStr, which already print as **********).
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) else value


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def capped_partitions(declared: int, partitions_max: int | None) -> int:
    """A topic's partitions under KAFKA_TOPIC_PARTITIONS_MAX (None: the catalog's count)."""
    return min(declared, partitions_max or declared)


class KafkaSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    brokers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    topic_prefix: str = Field(default="mgw", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    client_id: str = "media-gateway"
    # 1 suits one dev broker; production clusters set 3.
    replication_factor: int = Field(default=1, ge=1, le=16)
    # Seconds the gateway waits for the broker's acknowledgement before answering 503.
    publish_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Short group timeouts: Tansu (and any dev broker) joins groups slowly on defaults.
    session_timeout_s: float = Field(default=6.0, gt=0)
    rebalance_timeout_s: float = Field(default=6.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    commit_interval_s: float = Field(default=1.0, gt=0)
    # How long a worker's fetch may wait at the broker for records. Tansu (the embedded
    # broker) answers a waiting fetch only when the wait ends, so each agent hop costs up to
    # this much (agents/framework/kafka/fetch_wait.py); Apache Kafka answers as records arrive, and
    # a production cluster may raise it (e.g. 500) to poll idle partitions less often.
    fetch_max_wait_ms: int = Field(default=10, ge=1, le=10_000)
    # A worker's consumer that has seen no record and no wake-up call for a second stops
    # fetching, and fetches again when our producers call (Redis pub/sub) or, at the latest,
    # after this long: the bound on the delay of records from producers outside this code base
    # (core/broker_wakeup.py). 0: always fetch (Apache Kafka, which answers as records arrive).
    idle_fetch_interval_ms: int = Field(default=3000, ge=0, le=60_000)
    # At most this many partitions per topic where this code creates topics (`mgw topics
    # create`, `mgw up`), and what `mgw topics list|plan` expect. Unset: the catalog's counts
    # (production). `mgw up` sets 1 for its embedded broker: one worker process reads every
    # partition anyway, and each idle consumer's fetch names every partition it holds
    # (docs/OPERATIONS.md, "An idle stack").
    topic_partitions_max: int | None = Field(default=None, ge=1)

    def partitions(self, declared: int) -> int:
        """The partitions a topic the catalog declares with `declared` has on this broker."""
        return capped_partitions(declared, self.topic_partitions_max)

    _split = field_validator("brokers", mode="before")(_split_csv)

    @field_validator("brokers")
    @classmethod
    def _check_brokers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one host:port is required")
        for broker in value:
            if "@" in broker or "://" in broker:
                # The broker list is published (the AsyncAPI document's servers): it must
                # never carry credentials.
                raise ValueError(f"{redact_url(broker)!r} is not host:port (no credentials)")
            host, _, port = broker.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{broker!r} is not host:port")
        return value

    @property
    def bootstrap(self) -> str:
        return ",".join(self.brokers)


class PostgresSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="POSTGRES_", extra="ignore")
    aliases: ClassVar[dict[str, str]] = {"url": "DATABASE_URL"}

    url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    command_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must start with postgresql:// (or postgres://)")
        return value

    def require_url(self) -> str:
        if not self.url:
            raise ConfigError(["DATABASE_URL: not set (run `mgw up`, or export DATABASE_URL)"])
        return self.url


class RedisSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")
    aliases: ClassVar[dict[str, str]] = {"url": "REDIS_URL"}

    url: str | None = Field(default=None, validation_alias="REDIS_URL")
    key_prefix: str = Field(default="mgw", pattern=r"^[A-Za-z0-9:._-]{1,100}$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    def require_url(self) -> str:
        if not self.url:
            raise ConfigError(["REDIS_URL: not set (run `mgw up`, or export REDIS_URL)"])
        return self.url


class QdrantSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="QDRANT_", extra="ignore")

    # A server URL selects qdrant-client; without one the in-process engine at `path` is used.
    url: str | None = None
    api_key: SecretStr | None = None
    path: Path = Path(".mgw/qdrant")
    collection: str = "content"


class EmbeddingSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_", extra="ignore")

    # One dimension runs through content vectors, preference vectors and the adapters.
    dimension: int = Field(default=384, ge=8, le=4096)
    provider: Literal["local", "openai"] = "local"


class OpenAISettings(_Section):
    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    timeout_s: float = Field(default=10.0, gt=0)


# Logged at start by the gateway and the sync workers when PUBNUB_ALLOW_OPEN_CHANNELS lets
# PubNub mode run without a secret key.
OPEN_CHANNELS_WARNING = (
    "PubNub mode without PUBNUB_SECRET_KEY (PUBNUB_ALLOW_OPEN_CHANNELS=true): channels are OPEN, "
    "any client holding the subscribe key can read every user's sync, devices and notifications "
    "channels, and publish on them"
)


class PubNubSettings(_Section):
    """PubNub mode is on when both the publish and the subscribe key are set (docs/REALTIME.md).

    Access Manager: the secret key signs the gateway's grants and the delivery agent's publishes
    and revocations; devices only ever hold tokens granting read on their user's channels. PubNub
    mode without it would leave every channel open to anyone holding the subscribe key, so it
    refuses to load unless `allow_open_channels` says the operator accepts that.
    """

    model_config = SettingsConfigDict(env_prefix="PUBNUB_", extra="ignore")

    # The publish key lets its holder publish on every channel of the keyset: a secret. The
    # subscribe key is handed to devices (GET .../realtime), so it is not one.
    publish_key: SecretStr | None = None
    subscribe_key: str | None = None
    secret_key: SecretStr | None = None
    allow_open_channels: bool = False
    # Longest life of a device's realtime token (PubNub counts token TTLs in minutes; a token
    # never outlives the credential it was asked with either).
    token_max_ttl_min: int = Field(default=1440, ge=1, le=1440)
    # Live tokens one device may hold; past it the token route answers 429 (a client asking in a
    # loop would grow the revocation record, and the work of a removal, without bound).
    tokens_per_device: int = Field(default=10, ge=1, le=1000)
    # host:port; a loopback origin in tests, PubNub's own by default.
    origin: str | None = None
    ssl: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.publish_key and self.subscribe_key)

    @property
    def access_manager(self) -> bool:
        """Grants are enforced: the channels need tokens (PubNub mode with a secret key)."""
        return self.enabled and self.secret_key is not None

    @model_validator(mode="after")
    def _secret_key_or_open_channels(self) -> PubNubSettings:
        if self.enabled and self.secret_key is None and not self.allow_open_channels:
            raise ValueError(
                "PUBNUB_SECRET_KEY is not set, but PUBNUB_PUBLISH_KEY and PUBNUB_SUBSCRIBE_KEY "
                "are (PubNub mode): without Access Manager any client holding the subscribe key "
                "can read every user's channels. Set PUBNUB_SECRET_KEY (the keyset's secret "
                "key, Access Manager enabled), or PUBNUB_ALLOW_OPEN_CHANNELS=true to accept "
                "open channels"
            )
        return self


class RealtimeSettings(_Section):
    """The gateway's realtime streams (SSE, and the device socket): tickets and caps
    (docs/SYNC.md, "Stream tickets, caps and ends")."""

    model_config = SettingsConfigDict(env_prefix="REALTIME_", extra="ignore")

    # A stream ticket (POST .../stream/ticket) may be redeemed once within this many seconds
    # (never longer than the credential it stands for has left).
    ticket_ttl_s: int = Field(default=60, ge=1, le=600)
    # Open streams plus sockets: per user across every gateway process (429 beyond), and per
    # gateway process (503 beyond).
    streams_per_user: int = Field(default=10, ge=1, le=10_000)
    streams_per_process: int = Field(default=10_000, ge=1, le=1_000_000)
    # A stream's hold on its user's count in Redis lapses this long after its process last
    # refreshed it (every third of it): a killed gateway's streams stop counting after this.
    lease_ttl_s: float = Field(default=30.0, ge=1, le=3600)


class LogSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    format: Literal["json", "pretty"] = "json"
    # RUST_LOG style: a default level, then module=level pairs.
    level: str = "info,aiokafka=warning,faust=warning,mode=warning,uvicorn.access=warning"

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        from core.observability.levels import parse_level_spec

        parse_level_spec(value)
        return value


class GatewaySettings(_Section):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # On a read-model miss, ask the catalog agent over Kafka (request/reply) before a 404.
    lookup_on_miss: bool = True
    lookup_timeout_s: float = Field(default=1.0, gt=0, le=30)
    # Serve the hottest routes without FastAPI's router (gateway/fast_lane.py); off, FastAPI
    # serves them with the same code (kept to show both lanes answer alike).
    fast_lane: bool = True
    # Processes serving the port, each with its own producer; 0 is one per core.
    workers: int = Field(default=0, ge=0, le=64)
    # A listening socket inherited from `mgw up` (cli/ports.py), served instead of binding
    # host:port; `port` then only names it.
    listen_fd: int | None = Field(default=None, ge=0)
    # The edge (gateway/edge_protocol.py): a request's headers must arrive within this many
    # seconds, its body may pause at most this long between two arrivals (408 and closed
    # after), its request line and headers may take this many bytes (431), and one process
    # holds at most this many connections (503 beyond; capped by its open-file limit).
    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    body_timeout_s: float = Field(default=10.0, gt=0, le=600)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_connections: int = Field(default=10_000, ge=1, le=1_000_000)
    # Idempotency-Key (gateway/middleware/idempotency.py): a write's first answer is replayed
    # to retries for this long (24 h: a day of client retries, as the IETF draft's examples
    # and the big payment APIs keep them); a request still running holds its key at most
    # idempotency_lock_s (longer than any write takes; a crashed gateway's hold then lapses).
    idempotency_ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)
    idempotency_lock_s: float = Field(default=60.0, gt=0, le=3600)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's proxy headers):
    # addresses or networks (10.0.0.0/8), or * for any. Empty (the default): none, and the
    # client address is the socket peer's. Set it to the reverse proxy's addresses only: a
    # trusted peer decides the address the rate limits, failed-auth budget and logs key on,
    # so * lets any client pick its own (docs/OPERATIONS.md).
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)

    _split_forwarded = field_validator("forwarded_allow_ips", mode="before")(_split_csv)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address, a network or *") from None
        return value

    # CORS (gateway/app.py): the browser origins allowed to call the API, comma-separated
    # (`https://app.example.com`), or `*`; none (the default) sends no CORS headers at all.
    # Credentials (cookies) are never allowed with `*`: refused at start.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False

    _split_origins = field_validator("cors_origins", mode="before")(_split_csv)

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and re.fullmatch(_ORIGIN, origin) is None:
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path, or *"
                )
        return value

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_credentials_with_any_origin(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "*" in info.data.get("cors_origins", []):
            raise ValueError(
                "credentials cannot be allowed for every origin (GATEWAY_CORS_ORIGINS=*): "
                "name the origins, or leave credentials off"
            )
        return value

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


class MetricsSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    host: str = "127.0.0.1"
    # 0 picks a free port (the embedded default runs several processes on one host).
    port: int = Field(default=9090, ge=0, le=65535)
    # A listening socket inherited from `mgw up` (cli/ports.py), as GatewaySettings.listen_fd.
    listen_fd: int | None = Field(default=None, ge=0)


class AuthSettings(_Section):
    """JWT verification (HS256 secret and/or RS256 public key) and the dev token command."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    # At least 32 bytes: HS256 with a shorter secret is brute-forceable offline from one token.
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    # RS256 keys: a PEM string or the path of a PEM file. The private key signs dev tokens only.
    jwt_public_key: str | None = None
    jwt_private_key: SecretStr | None = None
    issuer: str = Field(default="media-gateway", min_length=1)
    audience: str = Field(default="media-gateway-api", min_length=1)
    access_ttl_s: int = Field(default=3600, ge=1)
    refresh_ttl_s: int = Field(default=604800, ge=1)
    # Enables `mgw token dev`; never set in production.
    dev_mode: bool = False
    # Clock skew tolerated on exp/iat/nbf between the token issuer and this host.
    leeway_s: float = Field(default=30.0, ge=0, le=600)
    # Profiles one account may hold (a household, not a directory): the gateway answers 409
    # `profile_limit_reached` past it, the accounts agent drops what got past (docs/AUTH.md).
    max_profiles: int = Field(default=10, ge=1, le=100)
    # External OpenID Connect providers (docs/AUTH.md, "External providers"): their JWKS URLs,
    # comma-separated, and the `iss` values a token verified by one of their keys may carry
    # (none named: AUTH_ISSUER only).
    jwks_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How long a fetched JWKS is used before it is fetched again (a key the provider withdrew
    # stops verifying by then), and the least time between two fetches forced by tokens naming
    # a key we do not know (a stream of made-up `kid`s must not become a stream of fetches).
    jwks_cache_s: float = Field(default=300.0, gt=0, le=86400)
    jwks_refresh_cooldown_s: float = Field(default=10.0, ge=0, le=3600)
    jwks_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # The bound on how long a revocation takes to reach every gateway process when the auth
    # agents' announcement (Redis pub/sub) cannot reach it: a process that cannot subscribe
    # reads the signing keys and deny-list version this often. docs/AUTH.md, "Revocation".
    revocation_poll_s: float = Field(default=0.5, gt=0, le=60)
    # How long the token and revocation endpoints wait for the auth agents' answer.
    token_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # TV sign-in (RFC 8628, docs/AUTH.md "TV sign-in"): a device code's life, the polling
    # interval a TV is told, device codes one client address may ask for per minute (per
    # gateway deployment: counted in Redis), and where the user types the code (default: this
    # gateway's /activate).
    device_code_ttl_s: int = Field(default=600, ge=1, le=3600)
    device_poll_interval_s: int = Field(default=5, ge=1, le=60)
    device_codes_per_minute: int = Field(default=10, ge=1, le=10_000)
    device_verification_uri: str | None = None

    _split_jwks = field_validator("jwks_url", "trusted_issuers", mode="before")(_split_csv)

    @field_validator("jwks_url")
    @classmethod
    def _check_jwks(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value


class RateLimitSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="RATE_LIMIT_", extra="ignore")

    enabled: bool = True
    # While Redis is unreachable the in-process limiter counts; Redis is retried this often.
    redis_retry_s: float = Field(default=1.0, gt=0, le=300)
    # Failed authentications (401) one client address may cause per minute in one gateway
    # process; past it, requests carrying a credential get 429 before the credential is read
    # (gateway/auth/failures.py). Counted in process: no Redis round trip for a bad credential.
    auth_failures_per_minute: int = Field(default=30, ge=1, le=1_000_000)


class ResponseCacheSettings(_Section):
    """The gateway's Redis cache of GET responses (docs/OBSERVABILITY.md)."""

    model_config = SettingsConfigDict(env_prefix="RESPONSE_CACHE_", extra="ignore")

    enabled: bool = True
    # docs/RULES.md: content paths 300 s, other GETs 60 s.
    content_ttl_s: int = Field(default=300, ge=1, le=86400)
    default_ttl_s: int = Field(default=60, ge=1, le=86400)
    # Larger responses are served but not stored.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # The in-process tier in front of Redis (docs/GATEWAY_PERFORMANCE.md): anonymous hits answered
    # without a Redis round trip, for at most this long after an invalidation whose Pub/Sub
    # message is lost. 0 (the default) keeps every hit exact: an invalidation is seen by the
    # very next request.
    near_ttl_s: float = Field(default=0.0, ge=0, le=60)
    near_max_entries: int = Field(default=10_000, ge=1)


class DiscoverySettings(_Section):
    """Natural-language search (docs/DISCOVERY.md): cache lifetimes, the LLM, time budgets."""

    model_config = SettingsConfigDict(env_prefix="DISCOVERY_", extra="ignore")

    # docs/RULES.md: parsed intents 10 min, query embeddings 1 h, search responses 30 min. Seconds,
    # fractions allowed (tests expire entries in a fraction of a second).
    intent_ttl_s: float = Field(default=600.0, gt=0, le=7 * 86400)
    embedding_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    results_ttl_s: float = Field(default=1800.0, gt=0, le=7 * 86400)
    # Parse queries with OPENAI_CHAT_MODEL when OPENAI_API_KEY is set; false: the local parser.
    llm_intents: bool = True
    llm_timeout_s: float = Field(default=1.5, gt=0, le=60)
    # docs/RULES.md: each search strategy 300 ms, the whole retrieval 450 ms.
    strategy_timeout_s: float = Field(default=0.3, gt=0, le=60)
    search_timeout_s: float = Field(default=0.45, gt=0, le=120)
    # How long the gateway waits for the discovery agent to answer a result-cache miss (504 after).
    reply_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # The global budget of LLM intent calls for searches without a credential, shared by every
    # discovery worker through Redis (agents/discovery/llm_budget_store.py); past it the local rules
    # read the query. 0 sends no anonymous query to the LLM.
    anonymous_llm_per_minute: int = Field(default=60, ge=0, le=1_000_000)
    anonymous_llm_per_day: int = Field(default=10_000, ge=0, le=100_000_000)


class SyncSettings(_Section):
    """Bounds on what one user can grow in cross-device sync (docs/OPERATIONS.md#bounds)."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", extra="ignore")

    # Registered devices per user: the gateway refuses a new one past it (409), and the sync
    # agent, the source of truth, ignores a registration that raced past the gateway's check.
    max_devices_per_user: int = Field(default=20, ge=1, le=10_000)
    # Titles on one watchlist; a re-add of a title already on it is always accepted.
    max_watchlist_size: int = Field(default=5_000, ge=1, le=1_000_000)
    # How long a watchlist tombstone (a removed add tag) is kept, from the stamp of the remove
    # that made it: long enough for a device offline that long to sync its edits. 30 days.
    tombstone_retention_s: float = Field(default=30 * 86_400.0, gt=0, le=3650 * 86_400)
    # At most this many titles are compacted per run of the sync agent's compaction timer
    # (every 5 minutes); a title written to is compacted as it is written.
    tombstone_compaction_batch: int = Field(default=1000, ge=1, le=100_000)


class SonaSettings(_Section):
    """Personalization (docs/SONA.md): adapter storage, the in-process adapter cache,
    training cadence, the recommendation cache and how long the gateway waits for an answer."""

    model_config = SettingsConfigDict(env_prefix="SONA_", extra="ignore")

    # Stored adapter versions kept per user; older ones are pruned when a new one is written.
    keep_versions: int = Field(default=3, ge=1, le=1000)
    # float16 halves the blob; the codec falls back to float32 when a weight would move > 5e-4.
    store_float16: bool = True
    # Adapters held by each worker process (LRU); a new version evicts its user everywhere.
    cache_entries: int = Field(default=10_000, ge=1)
    # docs/RULES.md: retrain once at least this many new viewing events arrived for the user.
    min_training_events: int = Field(default=10, ge=1)
    # The most recent viewings one training round uses.
    max_training_examples: int = Field(default=200, ge=10)
    # docs/RULES.md: recommendations are cached 1 h (and dropped when the user's taste changes).
    cache_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    # How long the gateway waits for the SONA agent to answer a cache miss (504 after).
    reply_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # false: answers use the profile alone (the per-user layers are still trained; the
    # population layer is not, and trains as a worker starts once this is true). On by
    # default: the population layer, reading the taste and the latest liked titles, adds
    # measurably over the profile alone (NDCG@10 gain interval above 0) on validation and on
    # both test seeds (docs/SONA.md, "Quality", fourth and fifth passes).
    adapter_enabled: bool = True


class McpSettings(_Section):
    """The MCP server for assistants (docs/MCP.md): on the gateway at /mcp, and `mgw mcp`."""

    model_config = SettingsConfigDict(env_prefix="MCP_", extra="ignore")

    # Serve /mcp and its protected-resource metadata on the gateway.
    enabled: bool = True
    # The assistant's device id: the sender of its remote commands (not a registered device).
    device_id: str = Field(default="assistant", pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    # The public URL of /mcp, the resource its tokens are for; default: the request's own.
    resource_url: str | None = Field(default=None, pattern=r"^https?://")
    # Where a client gets tokens, in the protected-resource metadata; default: AUTH_ISSUER when
    # it is a URL, else the gateway itself (tokens are signed for it: `mgw token dev`).
    authorization_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # `mgw mcp` (stdio): the user's token and the gateway it calls (default: MGW_GATEWAY_URL,
    # which `mgw up` records, else 127.0.0.1:8080).
    token: SecretStr | None = None
    gateway_url: str | None = Field(default=None, pattern=r"^https?://")

    _split = field_validator("authorization_servers", mode="before")(_split_csv)


class DeviceSocketSettings(_Section):
    """The device WebSocket (gateway/realtime/socket.py, docs/DEVICE_PROTOCOL.md)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_SOCKET_", extra="ignore")

    # A frame larger than this closes the socket with 1009 (the server refuses to read it).
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Inbound frames per device (all its sockets on one process): a token bucket refilled at
    # frames_per_s, holding at most burst; a frame past it closes the socket with 1008.
    frames_per_s: float = Field(default=20.0, gt=0, le=10_000)
    burst: int = Field(default=40, ge=1, le=100_000)
    # permessage-deflate: off by default, as the frames are small JSON and each compressed
    # socket holds a zlib context (tens of KiB) for its whole life.
    compression: bool = False


class Settings(BaseModel):
    kafka: KafkaSettings
    postgres: PostgresSettings
    redis: RedisSettings
    qdrant: QdrantSettings
    embedding: EmbeddingSettings
    openai: OpenAISettings
    pubnub: PubNubSettings
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    log: LogSettings
    gateway: GatewaySettings
    metrics: MetricsSettings
    auth: AuthSettings
    rate_limit: RateLimitSettings
    response_cache: ResponseCacheSettings
    discovery: DiscoverySettings
    sona: SonaSettings
    mcp: McpSettings = Field(default_factory=McpSettings)
    socket: DeviceSocketSettings = Field(default_factory=DeviceSocketSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)


_SECTIONS: dict[str, type[_Section]] = {
    "kafka": KafkaSettings,
    "postgres": PostgresSettings,
    "redis": RedisSettings,
    "qdrant": QdrantSettings,
    "embedding": EmbeddingSettings,
    "openai": OpenAISettings,
    "pubnub": PubNubSettings,
    "realtime": RealtimeSettings,
    "log": LogSettings,
    "gateway": GatewaySettings,
    "metrics": MetricsSettings,
    "auth": AuthSettings,
    "rate_limit": RateLimitSettings,
    "response_cache": ResponseCacheSettings,
    "discovery": DiscoverySettings,
    "sona": SonaSettings,
    "mcp": McpSettings,
    "socket": DeviceSocketSettings,
    "sync": SyncSettings,
}


def _describe(section: type[_Section], error: dict[str, Any]) -> str:
    if not error["loc"]:
        # A rule across fields (a model validator): its message names the variables itself.
        return str(error["msg"]).removeprefix("Value error, ")
    field = str(error["loc"][0])
    name = section.env_name(field)
    for alias_field, alias in section.aliases.items():
        if field == alias:
            name = alias
            field = alias_field
    value = error.get("input")
    if isinstance(value, dict):
        shown = ""
    elif section.is_secret(field):
        shown = f" (got {MASK}: a secret's value is never shown)"
    else:
        # A URL, or a list of host:port, may embed a password: shown with it masked.
        shown = f" (got {_masked(value)!r})"
    reason = redact_text(error["msg"].removeprefix("Value error, "))
    return f"{name}: {reason}{shown}"


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact_url(value) if "@" in value else value
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def load_settings(env_file: str | Path | None = None) -> Settings:
    """Read every section; raise ConfigError naming each bad variable."""
    path = str(env_file) if env_file is not None else _env_file()
    values: dict[str, _Section] = {}
    problems: list[str] = []
    for key, section in _SECTIONS.items():
        try:
            values[key] = section(_env_file=path)  # type: ignore[call-arg]
        except ValidationError as exc:
            problems.extend(_describe(section, err) for err in exc.errors())
    if problems:
        raise ConfigError(problems)
    return Settings(**values)  # type: ignore[arg-type]


def settings_with(env: Mapping[str, str]) -> Settings:
    """The settings of a process whose environment is this one's plus `env` (for the tools
    and tests that start such processes and must reach what those reach)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return load_settings()
