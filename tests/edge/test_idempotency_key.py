"""Idempotency-Key at the gateway: a retry of one operation gets the first answer (the same
event, command id or watchlist tag); another key or another caller is another operation, and
the key on another request is refused (tests/edge/test_idempotent_replay.py has the rest)."""

from __future__ import annotations

from core.config import Settings
from tests.auth.helpers import bearer, register_devices, running_gateway, user_token
from tests.helpers import catalog_title


async def test_a_retried_write_is_the_same_operation_and_others_are_not(
    settings: Settings,
) -> None:
    title = await catalog_title(settings)

    def headers(user: str, key: str) -> dict[str, str]:
        token = user_token(settings, subject=user, scopes=["watchlist:write"])
        return {**bearer(token), "Idempotency-Key": key, "X-Device-ID": "phone-1"}

    async with running_gateway(settings) as (_, http):
        for user in ("alice", "bob"):
            await register_devices(http, settings, user, "phone-1")

        async def add(user: str, key: str) -> dict[str, str]:
            resp = await http.put(
                f"/api/v1/users/{user}/watchlist/{title}", headers=headers(user, key)
            )
            assert resp.status_code == 202, resp.text
            return resp.json()

        first, retry = await add("alice", "op-1"), await add("alice", "op-1")
        assert retry == first  # the stored answer: not published again
        assert (await add("alice", "op-2"))["event_id"] != first["event_id"]
        assert (await add("bob", "op-1"))["event_id"] != first["event_id"]
        removed = await http.request(
            "DELETE", f"/api/v1/users/alice/watchlist/{title}", headers=headers("alice", "op-1")
        )
        assert removed.status_code == 422  # another request: the key names the add
        assert removed.json()["error"] == "idempotency_key_reused"
        quoted = await http.put(  # the draft's structured-field form is the same key
            f"/api/v1/users/alice/watchlist/{title}", headers=headers("alice", '"op-1"')
        )
        assert quoted.json() == first and quoted.headers["Idempotent-Replayed"] == "true"
        bad = await http.put(
            f"/api/v1/users/alice/watchlist/{title}", headers=headers("alice", "k" * 256)
        )
        assert bad.status_code == 422
        assert bad.json()["fields"][0]["field"] == "header.Idempotency-Key"


async def test_without_a_key_every_request_is_a_new_operation(settings: Settings) -> None:
    token = user_token(settings, subject="carol", scopes=["watchlist:write"])
    async with running_gateway(settings) as (_, http):
        url = f"/api/v1/users/carol/watchlist/{await catalog_title(settings)}"
        one = (await http.put(url, headers=bearer(token))).json()
        two = (await http.put(url, headers=bearer(token))).json()
    assert one["event_id"] != two["event_id"] and one["unique_tag"] != two["unique_tag"]


async def test_the_header_is_documented_on_every_write(settings: Settings) -> None:
    async with running_gateway(settings) as (_, http):
        document = (await http.get("/openapi.json")).json()
    writes = {
        (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "delete")
        and any(
            p.get("in") == "header" and p["name"] == "Idempotency-Key"
            for p in operation.get("parameters", [])
        )
    }
    assert ("/api/v1/content", "post") in writes
    assert ("/api/v1/users/{user_id}/devices/{device_id}/commands", "post") in writes
    assert ("/api/v1/users/{user_id}/watchlist/{content_id}", "delete") in writes
    assert ("/api/v1/users/{user_id}/progress/{content_id}", "put") in writes
    assert ("/api/v1/ingest/{platform}/items", "post") in writes
