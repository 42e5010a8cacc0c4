"""Every topic declared once: name, partitions, key, payload schema, cleanup, dead letters.

Names are `{prefix}.{name}`; the prefix comes from KAFKA_TOPIC_PREFIX so several deployments
(or test sessions) can share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.accounts import ApiKeyChanged, ProfileChanged
from schemas.auth import (
    DeviceApprovalRequested,
    DeviceAuthorizationRequested,
    RevocationRequested,
    SessionChanged,
    TokenRequested,
)
from schemas.content import (
    AvailabilityChanged,
    ContentExpiring,
    ContentIngested,
    ContentLookupRequested,
    ContentSubmitted,
    ContentUpdated,
    MetadataEnriched,
)
from schemas.discovery import SearchRequested
from schemas.envelope import Payload
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived, ItemMappingRequested
from schemas.notifications import (
    InboxLookupRequested,
    NotificationRaised,
    NotificationRead,
    PreferencesChanged,
)
from schemas.sona import (
    AdapterTrained,
    ContentDismissed,
    ContentRated,
    RecommendationsRequested,
)
from schemas.sync import (
    CommandResult,
    DeviceHeartbeat,
    DeviceRegistered,
    DeviceRemoved,
    ProgressUpdate,
    RealtimeEvent,
    RemoteCommandIssued,
    SyncLookupRequested,
    WatchlistUpdate,
)

DAY_MS = 24 * 60 * 60 * 1000
DLQ_SUFFIX = ".dlq"

# What agents/framework/runtime.py writes on a dead letter: the contract of every `.dlq` topic,
# for subscribers, `mgw dlq` and the generated docs (a test keeps the runtime to it).
DEAD_LETTER_REASONS: dict[str, str] = {
    "undecodable": "the value is empty or not JSON",
    "invalid": "JSON, but not a valid envelope of this topic (or a newer version than known)",
    "processing_failed": "valid, but its handler failed on it deterministically",
}
DEAD_LETTER_HEADERS: dict[str, str] = {
    "dlq.reason": "why: " + ", ".join(DEAD_LETTER_REASONS),
    "dlq.error": "the error, e.g. the invalid fields and why (at most 2000 characters)",
    "dlq.original_topic": "the topic the record was consumed from",
    "dlq.original_partition": "its partition there",
    "dlq.original_offset": "its offset there",
    "dlq.agent": "the agent that set it aside",
    "dlq.failed_at": "when (ISO 8601, UTC)",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the prefix
    payload: type[Payload] | None  # None: raw bytes (dead-letter topics)
    key: str  # what the record key is, for humans and for producers
    partitions: int = 4
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = 7 * DAY_MS
    description: str = ""
    has_dead_letters: bool = True
    extra_config: dict[str, str] = field(default_factory=dict)
    # Who writes it: gateway routes, agents, timers, commands or outside producers (for the
    # published contracts; consumers are found from the agents' declarations instead).
    producers: tuple[str, ...] = ()
    # Models of earlier payload versions still readable on this topic, oldest first; each
    # upcasts to the next (Payload.upcast). Raising `payload.version` for a breaking change
    # keeps the old model here while records of that version may still be read (docs/TOPICS.md).
    older_payloads: tuple[type[Payload], ...] = ()

    def full_name(self, prefix: str) -> str:
        return f"{prefix}.{self.name}" if prefix else self.name

    @property
    def dead_letter(self) -> TopicSpec | None:
        if not self.has_dead_letters:
            return None
        return TopicSpec(
            name=self.name + DLQ_SUFFIX,
            payload=None,
            key=self.key,
            partitions=1,
            retention_ms=30 * DAY_MS,
            description=f"records of {self.name} that could not be decoded, validated or handled",
            has_dead_letters=False,
            producers=(f"every agent consuming {self.name} (the agent runtime)",),
        )

    @property
    def is_dead_letter(self) -> bool:
        return self.payload is None and self.name.endswith(DLQ_SUFFIX)

    @property
    def is_request(self) -> bool:
        """A request someone waits for: its payload names the pub/sub channel of the answer
        (and of the failure, when the agent cannot answer: agreements/agent_reply.py)."""
        return self.payload is not None and "reply_channel" in self.payload.model_fields

    @property
    def payloads(self) -> tuple[type[Payload], ...]:
        """Every readable payload model, oldest version first, the current one last."""
        return (*self.older_payloads, self.payload) if self.payload is not None else ()

    def broker_config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


# Upstream: what producers write.
CONTENT_RAW = TopicSpec(
    name="content.raw",
    payload=CatalogItemReceived,
    key="platform:platform_item_id",
    # Platform feeds are bursty and large; raw items are replayable for two weeks.
    partitions=8,
    retention_ms=14 * DAY_MS,
    description="one raw catalog item of a platform's batch, before normalization",
    producers=(
        "gateway: POST /api/v1/ingest/{platform}/items",
        "mgw ingest FILE (agreements/catalog_producer.py)",
    ),
)
AVAILABILITY_RAW = TopicSpec(
    name="content.availability.raw",
    payload=AvailabilityReceived,
    key="platform:platform_item_id",
    description="a platform's current availability of one item (no metadata)",
    producers=(
        "platform availability feeds (outside producers)",
        "agent process-batch: availability parked before its item, handed back",
    ),
)
CONTENT_SUBMITTED = TopicSpec(
    name="content.submitted",
    payload=ContentSubmitted,
    key="canonical_id",
    description="a canonical record from a trusted producer, stored if new or newer",
    producers=("gateway: POST /api/v1/content",),
)

# Request/reply: the gateway asks an agent for a title the read model does not have.
CONTENT_LOOKUP = TopicSpec(
    name="content.lookup",
    payload=ContentLookupRequested,
    key="canonical_id",
    # A request nobody answered within a second is worthless soon after.
    retention_ms=60 * 60 * 1000,
    description="a read-model miss at the gateway; answered over Redis pub/sub",
    producers=("gateway: GET /api/v1/content/{content_id} on a read-model miss",),
)

# Request/reply: a producer asks which canonical title one of its items resolved to.
CONTENT_ITEM_LOOKUP = TopicSpec(
    name="content.item_lookup",
    payload=ItemMappingRequested,
    key="platform:platform_item_id",
    retention_ms=60 * 60 * 1000,
    description="a producer's question: which title did this platform item resolve to; "
    "answered over Redis pub/sub",
    producers=("gateway: GET /api/v1/ingest/{platform}/items/{item_id}",),
)

DISCOVERY_SEARCH = TopicSpec(
    name="discovery.search",
    payload=SearchRequested,
    # The result-cache key's digest: requests spread evenly over the partitions, and the same
    # search asked twice at once lands on one partition, where the agent answers it once.
    key="sha256 of the normalized query, filters and page (the result-cache key)",
    partitions=8,
    # Someone waits a few seconds for each answer; an older request is skipped, not answered.
    retention_ms=60 * 60 * 1000,
    description="a natural-language search the result cache missed; answered over Redis pub/sub",
    producers=("gateway: GET /api/v1/search on a result-cache miss",),
)

# Lifecycle: emitted by agents after the change is in PostgreSQL.
CONTENT_INGESTED = TopicSpec(
    name="content.ingested",
    payload=ContentIngested,
    key="canonical_id",
    description="a title new to the catalog, with its full canonical record",
    producers=("agent process-batch", "agent content-store"),
)
CONTENT_UPDATED = TopicSpec(
    name="content.updated",
    payload=ContentUpdated,
    key="canonical_id",
    description="a known title changed: the new record and the fields that changed",
    producers=("agent process-batch", "agent content-store"),
)
CONTENT_AVAILABILITY_CHANGED = TopicSpec(
    name="content.availability_changed",
    payload=AvailabilityChanged,
    key="canonical_id",
    description="per title and platform: availability rows that appeared, changed, expired",
    producers=("agent process-batch", "agent availability-sync", "agent content-store"),
)
CONTENT_METADATA_ENRICHED = TopicSpec(
    name="content.metadata_enriched",
    payload=MetadataEnriched,
    key="canonical_id",
    description="a title version has its vector in the vector store and its quality score",
    producers=("agents enrich-ingested and enrich-updated", "timer enrich-sweep"),
)
CONTENT_EXPIRING = TopicSpec(
    name="content.expiring",
    payload=ContentExpiring,
    key="canonical_id",
    description="a title leaves a platform in a region within 7, 3 or 1 day(s)",
    producers=("timer expiry-check (group availability)",),
)

SYNC_WATCHLIST = TopicSpec(
    name="sync.watchlist",
    payload=WatchlistUpdate,
    key="user_id",
    # Keyed by user: one user's operations stay in order on one partition.
    description="watchlist OR-Set operations (add/remove) from a user's devices",
    producers=("gateway: PUT and DELETE /api/v1/users/{user_id}/watchlist/{content_id}",),
)
# The rest of sync is keyed by user too (docs/SYNC.md). Device registrations, heartbeats and
# removals are three topics (one payload each), ordered among themselves by their HLC stamps.
SYNC_PROGRESS = TopicSpec(
    name="sync.progress",
    payload=ProgressUpdate,
    key="user_id",
    description="playback positions reported by a user's devices (last writer wins per title)",
    producers=("gateway: PUT /api/v1/users/{user_id}/progress/{content_id}",),
)
SYNC_DEVICES = TopicSpec(
    name="sync.devices",
    payload=DeviceRegistered,
    key="user_id",
    description="a device joined a user's account, or announced new details about itself",
    producers=("gateway: PUT /api/v1/users/{user_id}/devices/{device_id}",),
)
SYNC_DEVICE_HEARTBEATS = TopicSpec(
    name="sync.devices.heartbeat",
    payload=DeviceHeartbeat,
    key="user_id",
    # Only the latest heartbeat matters, and only for a minute.
    retention_ms=DAY_MS,
    description="a device is alive (and what it plays); offline 60 s after its last one",
    producers=("gateway: POST /api/v1/users/{user_id}/devices/{device_id}/heartbeat",),
)
SYNC_DEVICE_REMOVALS = TopicSpec(
    name="sync.devices.removed",
    payload=DeviceRemoved,
    key="user_id",
    description="a device left a user's account",
    producers=("gateway: DELETE /api/v1/users/{user_id}/devices/{device_id}",),
)
SYNC_COMMANDS = TopicSpec(
    name="sync.commands",
    payload=RemoteCommandIssued,
    key="user_id",
    # A command lives 5 s; a day is for audits and replays after an incident.
    retention_ms=DAY_MS,
    description="a remote command from one of a user's devices to another (play, seek, ...)",
    producers=("gateway: POST /api/v1/users/{user_id}/devices/{device_id}/commands",),
)
SYNC_COMMAND_RESULTS = TopicSpec(
    name="sync.command_results",
    payload=CommandResult,
    key="user_id",
    description="the router's outcome of each remote command: delivered, or why not",
    producers=("agent command-router",),
)
SYNC_REALTIME = TopicSpec(
    name="sync.realtime",
    payload=RealtimeEvent,
    key="user_id",
    retention_ms=DAY_MS,
    description="every message for a user's realtime channels (sync, devices, the "
    "notifications quiet hours or a burst held, released), after the change it reports was "
    "committed; the typed change feed of sync. A fan-out's alerts due when raised are not "
    "here: the raise sends them to the devices itself, through the realtime sink "
    '(docs/NOTIFICATIONS.md, "Scale")',
    producers=(
        "agents sync-watchlist, sync-progress, sync-device-*, command-router",
        "agent notifications-deliver (held alerts, released)",
        "timer presence-sweep",
    ),
)
SYNC_LOOKUP = TopicSpec(
    name="sync.lookup",
    payload=SyncLookupRequested,
    key="user_id",
    retention_ms=60 * 60 * 1000,
    description="a sync read-model miss at the gateway; answered over Redis pub/sub",
    producers=("gateway: GET of a user's watchlist, progress or devices on a read-model miss",),
)

# The built-in token service (docs/AUTH.md, "The token service").
AUTH_TOKEN_REQUESTS = TopicSpec(
    name="auth.token.requests",
    payload=TokenRequested,
    key="the hash of the refresh token or device code, or the dev user",
    # Someone waits a few seconds for each answer; an older request is worthless.
    retention_ms=60 * 60 * 1000,
    description="a client asks the token endpoint for tokens; answered over Redis pub/sub",
    producers=("gateway: POST /api/v1/auth/token",),
)
AUTH_REVOCATIONS = TopicSpec(
    name="auth.revocations",
    payload=RevocationRequested,
    key="the session id, or the hash of the refresh token",
    retention_ms=60 * 60 * 1000,
    description="a client signs out: revoke a session; answered over Redis pub/sub",
    producers=("gateway: POST /api/v1/auth/revoke",),
)
AUTH_DEVICE_AUTHORIZATIONS = TopicSpec(
    name="auth.device.authorizations",
    payload=DeviceAuthorizationRequested,
    key="the hash of the device code",
    retention_ms=60 * 60 * 1000,
    description="a TV asks for a device code (RFC 8628); answered over Redis pub/sub",
    producers=("gateway: POST /api/v1/auth/device/code",),
)
AUTH_DEVICE_APPROVALS = TopicSpec(
    name="auth.device.approvals",
    payload=DeviceApprovalRequested,
    key="the hash of the user code",
    retention_ms=60 * 60 * 1000,
    description="a signed-in user approves or denies a TV's user code; answered over pub/sub",
    producers=("gateway: POST /api/v1/auth/device/approve", "gateway: POST .../device/deny"),
)
AUTH_SESSIONS = TopicSpec(
    name="auth.sessions",
    payload=SessionChanged,
    key="user_id",
    description="a sign-in session began, was refreshed, revoked, or caught reusing a token",
    producers=("agent: auth-tokens", "agent: auth-revocations"),
)

# Personalization (docs/SONA.md).
SONA_RECOMMENDATIONS = TopicSpec(
    name="sona.recommendations",
    payload=RecommendationsRequested,
    key="user_id",
    # Someone waits a few seconds for each answer; an older request is worthless.
    retention_ms=60 * 60 * 1000,
    description="a recommendation-cache miss at the gateway; answered over Redis pub/sub",
    producers=("gateway: GET /api/v1/recommendations on a cache miss",),
)
SONA_RATINGS = TopicSpec(
    name="sona.ratings",
    payload=ContentRated,
    key="user_id",
    # Keyed by user, like progress: one user's feedback is folded in the order it was given.
    description="a user rated a title (1-5 stars); the latest rating of a title counts",
    producers=("gateway: PUT /api/v1/users/{user_id}/ratings/{content_id}",),
)
SONA_DISMISSALS = TopicSpec(
    name="sona.dismissals",
    payload=ContentDismissed,
    key="user_id",
    description='a user said "not interested" to a title: never recommended to them again',
    producers=("gateway: POST /api/v1/users/{user_id}/dismissals/{content_id}",),
)
SONA_ADAPTER_TRAINED = TopicSpec(
    name="sona.adapter_trained",
    payload=AdapterTrained,
    key="user_id",
    # Read from the start by every worker that caches adapters: a day bounds that replay.
    retention_ms=DAY_MS,
    description="a user's adapter has a new stored version: every worker drops its cached copy",
    producers=("agents sona-train-progress (group sona)",),
)

# Accounts: profiles and parental controls, API keys issued over HTTP (docs/AUTH.md).
ACCOUNTS_PROFILES = TopicSpec(
    name="accounts.profiles",
    payload=ProfileChanged,
    key="user_id",
    # Keyed by account: one account's profile changes apply in the order they were made.
    description="a profile of an account created, replaced or removed (its parental limits)",
    producers=("gateway: PUT/DELETE /api/v1/users/{user_id}/profiles/{profile_id}",),
)
ACCOUNTS_API_KEYS = TopicSpec(
    name="accounts.api_keys",
    payload=ApiKeyChanged,
    key="key_id",
    partitions=1,
    description="an admin issued or revoked an API key (its hash, never its secret)",
    producers=("gateway: POST /api/v1/admin/api-keys, DELETE /api/v1/admin/api-keys/{key_id}",),
)

# Watchlist alerts (docs/NOTIFICATIONS.md): keyed by user, so one user's changes stay in order.
NOTIFICATIONS_PREFERENCES = TopicSpec(
    name="notifications.preferences",
    payload=PreferencesChanged,
    key="user_id",
    description="a user replaced their notification preferences (services, region, quiet "
    "hours, alert kinds)",
    producers=("gateway: PUT /api/v1/users/{user_id}/preferences",),
)
NOTIFICATIONS_RAISED = TopicSpec(
    name="notifications.raised",
    payload=NotificationRaised,
    key="user_id",
    description="watchlist alerts held for one user (quiet hours, a burst) and due now; "
    "delivered to their devices and inbox. Alerts due when raised go to the inbox and "
    "straight to the devices (the realtime sink) from the raise itself "
    '(docs/NOTIFICATIONS.md, "Scale")',
    producers=("timer notifications-release",),
)
NOTIFICATIONS_READ = TopicSpec(
    name="notifications.read",
    payload=NotificationRead,
    key="user_id",
    description="a user read a notification of their inbox",
    producers=("gateway: POST /api/v1/users/{user_id}/notifications/{notification_id}/read",),
)
NOTIFICATIONS_LOOKUP = TopicSpec(
    name="notifications.lookup",
    payload=InboxLookupRequested,
    key="user_id",
    # Someone waits a second for each answer; an older request is worthless.
    retention_ms=60 * 60 * 1000,
    description="the gateway found no inbox or no preferences read model for a user; answered "
    "over Redis pub/sub once the agent refilled both from PostgreSQL",
    producers=(
        "gateway: GET /api/v1/users/{user_id}/notifications on a read-model miss",
        "gateway: GET /api/v1/users/{user_id}/preferences on a read-model miss",
    ),
)

TOPICS: tuple[TopicSpec, ...] = (
    CONTENT_RAW,
    AVAILABILITY_RAW,
    CONTENT_SUBMITTED,
    CONTENT_LOOKUP,
    CONTENT_ITEM_LOOKUP,
    DISCOVERY_SEARCH,
    CONTENT_INGESTED,
    CONTENT_UPDATED,
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_METADATA_ENRICHED,
    CONTENT_EXPIRING,
    SYNC_WATCHLIST,
    SYNC_PROGRESS,
    SYNC_DEVICES,
    SYNC_DEVICE_HEARTBEATS,
    SYNC_DEVICE_REMOVALS,
    SYNC_COMMANDS,
    SYNC_COMMAND_RESULTS,
    SYNC_REALTIME,
    SYNC_LOOKUP,
    AUTH_TOKEN_REQUESTS,
    AUTH_REVOCATIONS,
    AUTH_DEVICE_AUTHORIZATIONS,
    AUTH_DEVICE_APPROVALS,
    AUTH_SESSIONS,
    SONA_RECOMMENDATIONS,
    SONA_RATINGS,
    SONA_DISMISSALS,
    SONA_ADAPTER_TRAINED,
    ACCOUNTS_PROFILES,
    ACCOUNTS_API_KEYS,
    NOTIFICATIONS_PREFERENCES,
    NOTIFICATIONS_RAISED,
    NOTIFICATIONS_READ,
    NOTIFICATIONS_LOOKUP,
)


def all_topics() -> list[TopicSpec]:
    """The declared topics followed by their dead-letter topics."""
    out = list(TOPICS)
    out.extend(spec.dead_letter for spec in TOPICS if spec.dead_letter is not None)
    return out


def by_name(name: str) -> TopicSpec:
    for spec in all_topics():
        if spec.name == name:
            return spec
    raise KeyError(f"no topic {name!r} in the catalog")
