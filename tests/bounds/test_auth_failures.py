"""Failed authentications per client address: a 401 storm gets 429 `too_many_auth_failures`
after RATE_LIMIT_AUTH_FAILURES_PER_MINUTE, and the refusals never reach Redis."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import REGISTRY

from core.config import Settings
from gateway.auth.failures import FailedAuthentications
from tests.auth.helpers import bearer, random_ip, running_gateway, user_token

WHOAMI = "/api/v1/auth/whoami"


def refusals() -> float:
    labels = {"bound": "auth_failures", "where": "gateway"}
    return REGISTRY.get_sample_value("mgw_bound_refusals_total", labels) or 0.0


def test_the_window_counts_failures_per_address_and_resets() -> None:
    now = [100.0]
    failures = FailedAuthentications(per_minute=2, clock=lambda: now[0])
    assert failures.retry_after_s("a") is None
    failures.record("a")
    failures.record("a")
    assert failures.retry_after_s("a") == 60
    assert failures.retry_after_s("b") is None
    now[0] += 59.5
    assert failures.retry_after_s("a") == 1
    now[0] += 1
    assert failures.retry_after_s("a") is None and len(failures) == 0


def test_the_table_drops_expired_addresses_when_it_is_full() -> None:
    now = [0.0]
    failures = FailedAuthentications(per_minute=1, clock=lambda: now[0])
    for i in range(FailedAuthentications.PRUNE_AT):
        failures.record(f"10.0.{i // 256}.{i % 256}")
    now[0] = 61.0
    failures.record("late")
    assert len(failures) == 1


class NoRedis:
    """Stands in for Redis after the budget is spent: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Redis was used ({name}) for a refused credential")


async def test_a_401_storm_gets_429_after_the_budget(
    settings: Settings, topics_created: None
) -> None:
    limited = settings.model_copy(
        update={
            "rate_limit": settings.rate_limit.model_copy(update={"auth_failures_per_minute": 5})
        }
    )
    address = random_ip()
    before = refusals()
    async with running_gateway(limited, client_ip=address) as (app, client):
        storm = [
            await client.get(WHOAMI, headers={"Authorization": "Bearer not-a-jwt"})
            for _ in range(5)
        ]
        assert [r.status_code for r in storm] == [401] * 5
        refused = await client.get(WHOAMI, headers={"X-API-Key": "malformed"})
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"] == "too_many_auth_failures"
        assert body["type"] == "/problems/too_many_auth_failures"
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        # Refused unread: even a valid token from this address waits, and nothing asks Redis
        # (a well-formed API key would be looked up there).
        redis = app.state.redis
        app.state.redis = NoRedis()
        try:
            well_formed = await client.get(WHOAMI, headers={"X-API-Key": "mgw_abc.def"})
            valid = await client.get(WHOAMI, headers=bearer(user_token(limited, scopes=[])))
        finally:
            app.state.redis = redis
        assert well_formed.status_code == 429 and valid.status_code == 429
        assert refusals() == before + 3
        # Another address of the same process has its own budget.
        transport = httpx.ASGITransport(app, client=(random_ip(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as other:
            ok = await other.get(WHOAMI, headers=bearer(user_token(limited, scopes=[])))
        assert ok.status_code == 200
