"""Every operation that names a device (X-Device-ID, or a device in its path) documents 403
`unknown_device`, but a registration, which is how a device becomes known."""

from __future__ import annotations

from core.config import Settings
from tests.auth.helpers import running_gateway

REGISTRATION = ("/api/v1/users/{user_id}/devices/{device_id}", "put")


async def test_each_operation_naming_a_device_documents_unknown_device(
    settings: Settings,
) -> None:
    async with running_gateway(settings) as (_, http):
        document = (await http.get("/openapi.json")).json()
    naming, documented = set(), set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = {
                (p["in"], p["name"])
                for p in operation.get("parameters", [])
                if isinstance(p, dict) and "in" in p
            }
            if not names & {("header", "X-Device-ID"), ("path", "device_id")}:
                continue
            naming.add((path, method))
            if "unknown_device" in operation["responses"].get("403", {}).get("description", ""):
                documented.add((path, method))
    assert naming - documented == {REGISTRATION}
    # Watchlist add and remove, progress, heartbeat, removal, commands, the stream, its ticket
    # and the PubNub token.
    assert len(documented) == 9, sorted(documented)
