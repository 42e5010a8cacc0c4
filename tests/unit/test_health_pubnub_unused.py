"""A sync worker without PubNub keys delivers through the built-in fan-out: its readiness must
not call it degraded for a dependency it does not use."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from pydantic import SecretStr

from core.config import PubNubSettings, Settings
from core.observability.dependencies import OPTIONAL
from core.observability.health import standard_checker


async def _ok() -> dict[str, str]:
    return {}


def _settings(pubnub: PubNubSettings) -> Settings:
    # Only what a check of PubNub alone reads.
    return cast(Settings, SimpleNamespace(pubnub=pubnub))


async def test_pubnub_without_keys_is_not_a_dependency() -> None:
    checker = standard_checker(_settings(PubNubSettings()), {"pubnub": OPTIONAL})
    code, body = await checker.ready()
    assert code == 200 and body["status"] == "healthy", body
    assert "pubnub" not in body["components"]


async def test_pubnub_with_keys_is_checked() -> None:
    keys = PubNubSettings(
        publish_key=SecretStr("pub-c-x"), subscribe_key="sub-c-x", allow_open_channels=True
    )
    checker = standard_checker(_settings(keys), {"pubnub": OPTIONAL}, {"pubnub": _ok})
    code, body = await checker.ready()
    assert code == 200 and body["components"]["pubnub"]["status"] == "healthy", body
