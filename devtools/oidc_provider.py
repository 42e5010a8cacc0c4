"""A loopback OpenID Connect provider: its discovery document, its JWKS, and tokens signed with
its keys, for the gateway's JWKS verification to fetch from over real HTTP. Shared by the tests
(tests/auth/test_jwks_provider.py) and `mgw bench gateway --auth jwks`.

    async with LoopbackOidcProvider() as idp:
        idp.token(sub="alice")          # signed with the current key (ES256)
        idp.rotate()                    # a new current key; the old one stays published
        idp.retire_old_keys()           # only the current key is published
        idp.jwks_fetches                # how many times the JWKS was fetched

    with serving_in_thread(LoopbackOidcProvider()) as idp:   # for synchronous callers
        ...
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


class LoopbackOidcProvider:
    def __init__(self, audience: str = "media-gateway-api") -> None:
        self.audience = audience
        self.port = 0
        self.jwks_fetches = 0
        self._keys: list[tuple[str, ec.EllipticCurvePrivateKey]] = []
        self._runner: web.AppRunner | None = None
        self.rotate()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def rotate(self) -> str:
        kid = uuid.uuid4().hex[:16]
        self._keys.append((kid, ec.generate_private_key(ec.SECP256R1())))
        return kid

    def retire_old_keys(self) -> None:
        self._keys = self._keys[-1:]

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys:
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
        return {"keys": keys}

    def token(
        self,
        sub: str = "alice",
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        kid: str | None = None,
        ttl_s: int = 600,
        **claims: Any,
    ) -> str:
        """A token of this provider; `key`/`kid` override the current key (to forge one)."""
        current_kid, current = self._keys[-1]
        now = int(time.time())
        body = {"sub": sub, "iss": self.issuer, "aud": self.audience, "iat": now,
                "exp": now + ttl_s, "scope": "watchlist:read", **claims}  # fmt: skip
        return jwt.encode(
            body, key or current, algorithm="ES256", headers={"kid": kid or current_kid}
        )

    async def __aenter__(self) -> LoopbackOidcProvider:
        app = web.Application()
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return web.json_response(self.jwks())

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.issuer, "jwks_uri": self.jwks_url})


@contextmanager
def serving_in_thread(provider: LoopbackOidcProvider) -> Iterator[LoopbackOidcProvider]:
    """The provider answering from an event loop of its own, in a daemon thread: a synchronous
    caller (the gateway bench, which blocks on wrk) keeps it reachable for the gateway's fetches
    while it waits."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(provider.__aenter__(), loop).result(timeout=10)
        try:
            yield provider
        finally:
            asyncio.run_coroutine_threadsafe(provider.__aexit__(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
