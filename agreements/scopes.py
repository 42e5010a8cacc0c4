"""The scope names: what a route checks (gateway/auth), what the token service grants."""

from __future__ import annotations

# Every scope a route checks. Tokens may carry others (they are simply never asked for); the CLI
# refuses to mint API keys with names outside this list so a typo cannot create a useless key.
SCOPES: dict[str, str] = {
    "content:read": "read the catalog",
    "content:write": "publish canonical titles (ingestion producers)",
    "ingest:write": "send platform catalog batches to the raw topic (API keys only)",
    "watchlist:read": "read one's own watchlist",
    "watchlist:write": "add to / remove from one's own watchlist",
    "progress:read": "read one's own playback progress (continue watching)",
    "progress:write": "report one's own playback progress",
    "devices:read": "list one's own devices and hear their realtime channels",
    "devices:write": "register one's own devices, send their heartbeats, remove them",
    "devices:command": "send remote commands to one's own devices",
    "recommendations:read": "read one's own personalized recommendations",
    "recommendations:write": "rate titles and dismiss them, for one's own recommendations",
    "profiles:read": "list one's own account's profiles",
    "profiles:write": "create, change and remove one's own account's profiles (adult only)",
    "notifications:read": "read one's own notification preferences and inbox",
    "notifications:write": "set one's own notification preferences, mark notifications read",
}
