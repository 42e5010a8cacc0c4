"""A removed device's open stream ends with a final `revoked` event within a second of the
removal being applied, with a sync worker and a gateway as processes; the browser's ticket
never reaches the gateway's log."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from devtools.bench.sync_clients import Heard, SseDevice
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.e2e.test_sync import device_body
from tests.edge.stream_clients import EventSourceLike
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

SCOPES = ["devices:read", "devices:write", "watchlist:read"]


@pytest.fixture
async def gateway(spawn, isolated: Isolated) -> AsyncIterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", extra_env=isolated.env)
    proc = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    yield proc.url, proc


async def test_a_removed_devices_stream_ends_with_revoked_within_a_second(
    gateway: tuple[str, object], isolated: Isolated
) -> None:
    base, proc = gateway
    user = f"rev-{uuid.uuid4().hex[:6]}"
    token = user_token(isolated.settings, subject=user, scopes=SCOPES)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for device, kind in (("tv-1", "tv"), ("phone-1", "phone")):
            answer = await http.put(
                f"/api/v1/users/{user}/devices/{device}",
                json=device_body(kind),
                headers=bearer(token),
            )
            assert answer.status_code == 202, answer.text

        async def registered() -> bool:
            got = await http.get(f"/api/v1/users/{user}/devices", headers=bearer(token))
            return got.status_code == 200 and len(got.json()["devices"]) == 2

        await wait_for(registered, timeout=20, interval=0.1)

        ticket = await http.post(
            f"/api/v1/users/{user}/stream/ticket",
            headers={**bearer(token), "X-Device-ID": "tv-1"},
        )
        assert ticket.status_code == 200, ticket.text
        secret = ticket.json()["ticket"]
        # The phone (a fetch-based client, by token) hears the removal being applied.
        phone = await SseDevice(base, user, token, "phone-1", channels="devices").start()
        tv = EventSourceLike(base + ticket.json()["stream_url"])
        try:
            assert (await tv.open()).status_code == 200
            await tv.wait_event("ready")
            removed_sent = time.perf_counter()
            answer = await http.delete(f"/api/v1/users/{user}/devices/tv-1", headers=bearer(token))
            assert answer.status_code == 202, answer.text
            revoked = await tv.wait_event("revoked", wait_s=15)
            revoked_at = time.perf_counter()
            assert revoked.data == {"reason": "device_removed", "device_id": "tv-1"}
            assert await tv.next_event(wait_s=5) is None  # the last event: the stream ends

            def removal(h: Heard) -> bool:
                body = h.body if isinstance(h.body, dict) else {}
                return body.get("presence") == "removed" and body.get("device_id") == "tv-1"

            applied = await phone.inbox.wait_for(removal, wait_s=15)
            # Only the removed device's stream ended: the phone's is still open.
            assert phone._task is not None and not phone._task.done()
            assert not [h for h in phone.inbox.heard if h.channel == "revoked"]
        finally:
            await tv.close()
            await phone.close()
        lag = revoked_at - applied.at
        print(
            f"removal applied -> revoked: {lag * 1000:.0f} ms; "
            f"DELETE sent -> revoked: {(revoked_at - removed_sent) * 1000:.0f} ms"
        )
        assert lag < 1.0

        # The stream's requests are logged, the ticket in none of the lines.
        lines = proc.log_lines()  # type: ignore[attr-defined]
        assert any(f"/api/v1/users/{user}/stream" in line for line in lines)
        assert not any(secret in line for line in lines)
