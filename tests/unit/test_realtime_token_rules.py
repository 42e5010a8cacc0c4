"""What a device's PubNub token grants and for how long (gateway/realtime/token_rules.py)."""

from __future__ import annotations

from gateway.realtime.token_rules import granted_channels, ttl_minutes

NOW = 1_800_000_000.0


def test_the_token_lives_the_credentials_whole_minutes_at_most_the_maximum() -> None:
    assert ttl_minutes(NOW + 10 * 60 + 59, NOW, 1440) == 10
    assert ttl_minutes(NOW + 2 * 86400, NOW, 1440) == 1440
    assert ttl_minutes(NOW + 3600, NOW, 30) == 30
    # Under a minute left, or already past: nothing to hand on.
    assert ttl_minutes(NOW + 59, NOW, 1440) == 0
    assert ttl_minutes(NOW - 5, NOW, 1440) == 0
    assert ttl_minutes(None, NOW, 60) == 60


def test_channels_follow_the_scopes_the_stream_asks_for() -> None:
    every = granted_channels("alice", {"devices:read", "watchlist:read"})
    assert every == {
        "sync": "user.alice.sync",
        "devices": "user.alice.devices",
        "notifications": "user.alice.notifications",
    }
    assert set(granted_channels("alice", {"devices:read"})) == {"devices", "notifications"}
    assert granted_channels("alice", {"watchlist:read"}) == {"sync": "user.alice.sync"}
