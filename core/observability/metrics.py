"""Prometheus metrics shared by every process (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "mgw_events_consumed_total", "Records taken from a topic by an agent", ["agent", "topic"]
)
EVENTS_PRODUCED = Counter(
    "mgw_events_produced_total", "Records acknowledged by the broker", ["topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "mgw_events_dead_lettered_total",
    "Records sent to a dead-letter topic",
    ["agent", "topic", "reason"],
)
AGENT_BATCH_SECONDS = Histogram(
    "mgw_agent_batch_duration_seconds",
    "Time an agent spent on one batch, decode to durable effect",
    ["agent"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENT_STAGE_SECONDS = Histogram(
    "mgw_agent_stage_duration_seconds",
    "Wall time of one step of an agent's batch (decode, load, resolve, write, publish, ...)",
    ["agent", "stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENT_RETRIES = Counter(
    "mgw_agent_retries_total", "Batches retried after a transient failure", ["agent"]
)
AGENT_FAILURE_REPLIES = Counter(
    "mgw_agent_failure_replies_total",
    "Requests answered with a failure instead of an answer (request/reply agents)",
    ["agent", "kind"],
)
AUTH_FAILURES = Counter(
    "mgw_auth_failures_total", "Requests refused by authentication or authorization", ["reason"]
)
REALTIME_TOKENS = Counter(
    "mgw_realtime_tokens_total",
    "PubNub Access Manager tokens: granted to devices, refused (too many live for a device), "
    "revoked after a device's removal",
    ["outcome"],
)
DEVICE_CHECKS = Counter(
    "mgw_device_checks_total",
    "Device ownership checks of requests naming a device, by outcome: owned, unknown_device "
    "(403), and register_not_loaded (decided from the devices document, a second round trip)",
    ["outcome"],
)
RATE_LIMITED = Counter(
    "mgw_rate_limited_total", "Requests refused with 429, by caller tier", ["tier"]
)
RATE_LIMIT_LOCAL_FALLBACK = Gauge(
    "mgw_rate_limit_local_fallback",
    "1 while Redis is unreachable and this process counts rate limits on its own",
)

# --- HTTP edge, caches, breakers, pools and lag (docs/OBSERVABILITY.md lists them all) ---
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the last response byte, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# docs/RULES.md calls this active_connections; an ASGI app sees requests, not TCP connections,
# so it carries the conventional name for what it measures.
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress", "HTTP requests being handled right now"
)
# The gateway's own HTTP protocol (gateway/edge_protocol.py) sees TCP connections.
HTTP_CONNECTIONS_OPEN = Gauge("http_connections_open", "TCP connections open to the gateway")
HTTP_CONNECTIONS_REFUSED = Counter(
    "http_connections_refused_total",
    "Requests answered 503 because the process held GATEWAY_MAX_CONNECTIONS connections",
)
HTTP_REQUEST_TIMEOUTS = Counter(
    "http_request_timeouts_total",
    "Requests cut off with 408 because their headers or body came too slowly",
    ["phase"],
)
CACHE_HITS = Counter("cache_hits_total", "Lookups answered from a cache", ["cache"])
CACHE_MISSES = Counter("cache_misses_total", "Lookups a cache could not answer", ["cache"])
CIRCUIT_BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "Last breaker state this process saw: 0 closed, 1 half-open, 2 open",
    ["service"],
)
CIRCUIT_BREAKER_REJECTIONS = Counter(
    "circuit_breaker_rejections_total",
    "Calls refused without trying because the breaker was open",
    ["service"],
)
DB_POOL_CONNECTIONS = Gauge(
    "db_pool_connections",
    "PostgreSQL pool connections of this process, by state (active or idle)",
    ["state"],
)
CONSUMER_LAG = Gauge(
    "mgw_consumer_lag",
    "Records not yet committed by the group: fetch high watermark minus committed offset",
    ["topic", "partition", "group"],
)
CONSUMER_OFFSET_RESETS = Counter(
    "mgw_consumer_offset_resets",
    "Partitions whose offset was past the end of their log (the broker lost records) and "
    "were read again from the log start",
    ["topic", "partition", "group"],
)

# --- pipeline hygiene: poison rows, failing timers, what normalization dropped ---
ROWS_QUARANTINED = Counter(
    "mgw_rows_quarantined_total",
    "Rows a sweep or batch could not process and set aside, by agent and reason",
    ["agent", "reason"],
)
QUARANTINED_ROWS = Gauge(
    "mgw_quarantined_rows",
    "Rows currently in quarantine (the quarantine table), by agent",
    ["agent"],
)
TIMER_FAILURES = Counter(
    "mgw_timer_failures_total", "Runs of a periodic task that raised", ["timer"]
)
TIMER_CONSECUTIVE_FAILURES = Gauge(
    "mgw_timer_consecutive_failures",
    "Runs of a periodic task that raised since its last success",
    ["timer"],
)
# Watchlist alerts (docs/NOTIFICATIONS.md): held ones whose time came but that are not out yet.
NOTIFICATIONS_OVERDUE = Gauge(
    "mgw_notifications_overdue_seconds",
    "Age of the oldest notification held (quiet hours, a burst) whose deliver_at passed and "
    "that the release timer has not published yet; 0 when none",
)
# ... and fan-out pages stored but not sent: a page's mark lives about a second; an older one
# is a cause that failed after the page's commit (retrying, or dead-lettered: its users wait
# until it is replayed).
NOTIFICATION_PAGES_UNSENT = Gauge(
    "mgw_notification_pages_unsent_seconds",
    "Age of the oldest fan-out page whose notifications were stored and not sent (its mark "
    "in notification_pages_unsent); 0 when none",
)
INGEST_WARNINGS = Counter(
    "mgw_ingest_warnings_total",
    "What normalization dropped or changed of valid catalog items, by kind",
    ["kind"],
)
SERIES_ITEMS = Counter(
    "mgw_ingest_series_items_total",
    "Television items placed by process-batch: episodes placed in their series, season "
    "listings, and items parked until their series arrives",
    ["kind"],
)
EMBEDDED_TEXTS = Counter(
    "mgw_embedded_texts_total", "Texts embedded by enrichment, by model", ["model"]
)

# The device WebSocket (gateway/realtime/socket.py).
DEVICE_SOCKETS_OPEN = Gauge("device_sockets_open", "Device WebSockets open on this process")
DEVICE_SOCKET_FRAMES = Counter(
    "device_socket_frames_total",
    "Frames on device WebSockets, by direction (in, out) and frame type",
    ["direction", "type"],
)
DEVICE_SOCKET_ERRORS = Counter(
    "device_socket_errors_total",
    "`error` frames sent to devices (an inbound frame refused), by problem code",
    ["code"],
)
DEVICE_SOCKET_CLOSES = Counter(
    "device_socket_closes_total",
    "Device WebSockets ended, by close code (a refused handshake: its HTTP status, e.g. http_403)",
    ["code"],
)

# --- bounds on what one client can grow (docs/OPERATIONS.md#bounds) ---
BOUND_REFUSALS = Counter(
    "mgw_bound_refusals_total",
    "Requests or operations refused because a client crossed a bound, by bound and by where "
    "it was enforced (gateway: the 4xx answer; agent: an operation that raced past the gateway)",
    ["bound", "where"],
)
TOMBSTONES_COMPACTED = Counter(
    "mgw_sync_tombstones_compacted_total",
    "Watchlist tombstones dropped after SYNC_TOMBSTONE_RETENTION_S",
)
LLM_BUDGET_EXHAUSTED = Counter(
    "mgw_discovery_llm_budget_exhausted_total",
    "Anonymous searches read by the local rules because the LLM budget of this window "
    "(minute, day) was spent",
    ["window"],
)

# --- realtime streams and sockets (gateway/realtime/lifecycle.py, docs/SYNC.md) ---
REALTIME_OPEN = Gauge(
    "mgw_realtime_open", "Streams and sockets open in this gateway process", ["kind"]
)
REALTIME_REFUSED = Counter(
    "mgw_realtime_refused_total",
    "Streams and sockets refused at a cap: user (429 too_many_streams, across the gateways) "
    "or process (503 stream_capacity)",
    ["cap"],
)
REALTIME_ENDED = Counter(
    "mgw_realtime_ended_total",
    "Streams and sockets the gateway ended: expired (the credential's time ran out) or "
    "revoked (the device was removed)",
    ["reason"],
)
REALTIME_TICKETS = Counter(
    "mgw_realtime_tickets_total",
    "Stream tickets issued, redeemed, or refused (malformed, unknown, other_user, expired)",
    ["outcome"],
)
