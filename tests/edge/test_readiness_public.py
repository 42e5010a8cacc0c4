"""The gateway's /health/ready on its public port names a failing component and a short reason,
never the exception's text: no host, port, password or driver message. The log has the cause."""

from __future__ import annotations

from starlette.testclient import TestClient

from core.config import MetricsSettings, Settings
from core.embedded import free_port
from gateway.app import create_app

PASSWORD = "redis-Leak-7c1"


def test_public_readiness_says_what_is_down_not_where(
    settings: Settings, topics_created: None, warnings_seen: list[str]
) -> None:
    dead = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{dead}/0"
    local = settings.model_copy(
        update={
            "redis": settings.redis.model_copy(update={"url": url}),
            "metrics": MetricsSettings(host="127.0.0.1", port=0),
        }
    )
    with TestClient(create_app(local)) as client:
        resp = client.get("/health/ready")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["redis"]["error"] == "unreachable"
    assert "redis: unreachable" in body["failing"]
    assert body["components"]["kafka"]["status"] == "healthy"
    for leak in (PASSWORD, str(dead), "127.0.0.1", "Error", "Traceback", "connecting"):
        assert leak not in resp.text, f"{leak!r} in the public readiness body: {resp.text}"
    # The operator's log has the cause (the address it could not reach), password masked.
    logged = "\n".join(m for m in warnings_seen if m.startswith("readiness: redis"))
    assert str(dead) in logged, warnings_seen
    assert PASSWORD not in "\n".join(warnings_seen)
