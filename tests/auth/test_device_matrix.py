"""The authorization matrix of every route under /api/v1/users/{user_id}: who may name which
user and which device, on real parts (a sync worker, the broker, Redis, PostgreSQL, and two
gateway processes, one per lane).

Two users, alice and bob, each with two devices and a third one removed (the removal applied by
the sync agent). Every route is called as alice: on her own user id with her own devices (it
works), on bob's user id (403 `forbidden`), and, where the route names a device, with a device
that is not hers: never registered, removed, or bob's (403 `unknown_device`). Both lanes (the
fast lane and FastAPI's router) answer every case alike. The counts per outcome are printed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agreements.device_register import COMPLETE, register_key
from tests.auth.helpers import DEVICE_DETAILS, bearer, user_token
from tests.conftest import Isolated
from tests.helpers import catalog_titles, wait_for

pytestmark = pytest.mark.slow

SCOPES = [
    "watchlist:read",
    "watchlist:write",
    "progress:read",
    "progress:write",
    "devices:read",
    "devices:write",
    "devices:command",
    "recommendations:write",
]
OWN, FORBIDDEN, UNKNOWN = "own: works", "403 forbidden", "403 unknown_device"
LANES = ("fast", "fastapi")
PROGRESS = {"position_seconds": 10, "duration_seconds": 100, "state": "playing"}


@dataclass
class User:
    name: str
    user_id: str
    token: str
    # Registered and kept; registered then removed (ids of her own: device ids are per user,
    # so bob's phone must not be called as alice's is).
    phone: str = ""
    tv: str = ""
    removed: str = ""

    def __post_init__(self) -> None:
        self.phone, self.tv, self.removed = (f"{self.name}-{d}" for d in ("phone", "tv", "old"))

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def url(self, path: str) -> str:
        return f"/api/v1/users/{self.user_id}{path}"


@dataclass
class Case:
    name: str
    method: str
    url: str
    expected: str
    # The status an allowed call answers.
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    # The field an unknown_device answer names.
    field: str | None = None
    stream: bool = False


def new_user(isolated: Isolated, name: str) -> User:
    user_id = f"{name}-{uuid.uuid4().hex[:6]}"
    return User(name, user_id, user_token(isolated.settings, subject=user_id, scopes=SCOPES))


@dataclass
class Stack:
    lanes: dict[str, str]
    alice: User
    bob: User
    redis_prefix: str
    # Titles the catalog has: a watchlist add of any other is 404.
    titles: tuple[uuid.UUID, uuid.UUID]


async def _devices(http: httpx.AsyncClient, user: User) -> set[str]:
    resp = await http.get(user.url("/devices"), headers=user.headers)
    assert resp.status_code == 200, resp.text
    return {d["device_id"] for d in resp.json()["devices"]}


async def _set_up(http: httpx.AsyncClient, user: User, spares: list[str]) -> None:
    """Register the user's devices (and a spare per lane, for the removal case), remove one,
    and wait until the sync agent applied all of it."""
    kept = [user.phone, user.tv, *spares]
    for device in [*kept, user.removed]:
        resp = await http.put(
            user.url(f"/devices/{device}"), json=DEVICE_DETAILS, headers=user.headers
        )
        assert resp.status_code == 202, resp.text
    await wait_for(lambda: _has(http, user, {*kept, user.removed}), timeout=30, interval=0.1)
    resp = await http.delete(user.url(f"/devices/{user.removed}"), headers=user.headers)
    assert resp.status_code == 202, resp.text
    await wait_for(lambda: _has(http, user, set(kept)), timeout=30, interval=0.1)


async def _has(http: httpx.AsyncClient, user: User, devices: set[str]) -> bool:
    return await _devices(http, user) == devices


@pytest.fixture
async def stack(spawn, isolated: Isolated, redis_client) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", extra_env=isolated.env)
    env = {**isolated.env, "RATE_LIMIT_ENABLED": "false"}
    fast = spawn("gateway", extra_env={**env, "GATEWAY_FAST_LANE": "true"})
    slow = spawn("gateway", extra_env={**env, "GATEWAY_FAST_LANE": "false"})
    alice, bob = new_user(isolated, "alice"), new_user(isolated, "bob")
    prefix = isolated.settings.redis.key_prefix
    async with httpx.AsyncClient(base_url=fast.url, timeout=10) as http:
        for user in (alice, bob):
            await _set_up(http, user, [f"spare-{lane}" for lane in LANES])
            # The agent wrote the whole register: the check is decided by one HMGET.
            assert await redis_client.hget(register_key(prefix, user.user_id), COMPLETE)
    title, other = await catalog_titles(isolated.settings, 2)
    lanes = dict(zip(LANES, (fast.url, slow.url), strict=True))
    yield Stack(lanes, alice, bob, prefix, (title, other))


def matrix(alice: User, bob: User, lane: str, titles: tuple[uuid.UUID, uuid.UUID]) -> list[Case]:
    """Every route under /api/v1/users/{user_id}, called as alice."""
    title, other = titles
    own_device = {"X-Device-ID": alice.phone}
    cases: list[Case] = []

    def user_route(name: str, method: str, path: str, status: int, **kw: Any) -> None:
        """A route naming a user: her own works, bob's is forbidden."""
        cases.append(Case(f"{name}: own", method, alice.url(path), OWN, status, **kw))
        cases.append(Case(f"{name}: bob's user", method, bob.url(path), FORBIDDEN, **kw))

    def by_header(name: str, method: str, path: str, status: int, **kw: Any) -> None:
        """A route naming a device in X-Device-ID: also refused with any device not hers."""
        user_route(name, method, path, status, headers=own_device, **kw)
        cases.append(
            Case(
                f"{name}: bob's user, bob's device",
                method,
                bob.url(path),
                FORBIDDEN,
                headers={"X-Device-ID": bob.phone},
                **kw,
            )
        )
        for which, device in _not_hers(alice, bob):
            cases.append(
                Case(
                    f"{name}: {which} device",
                    method,
                    alice.url(path),
                    UNKNOWN,
                    headers={"X-Device-ID": device},
                    field="header.X-Device-ID",
                    **kw,
                )
            )

    def by_path(name: str, method: str, template: str, own: str, status: int, **kw: Any) -> None:
        """A route naming a device in its path."""
        cases.append(
            Case(f"{name}: own", method, alice.url(template.format(own)), OWN, status, **kw)
        )
        cases.append(
            Case(f"{name}: bob's user", method, bob.url(template.format(bob.tv)), FORBIDDEN, **kw)
        )
        for which, device in _not_hers(alice, bob):
            cases.append(
                Case(
                    f"{name}: {which} device",
                    method,
                    alice.url(template.format(device)),
                    UNKNOWN,
                    field="path.device_id",
                    **kw,
                )
            )

    # Watchlist and progress: the acting device in X-Device-ID.
    by_header("watchlist add", "PUT", f"/watchlist/{title}", 202)
    by_header("watchlist remove", "DELETE", f"/watchlist/{title}", 202)
    user_route("watchlist add, no device", "PUT", f"/watchlist/{other}", 202)
    user_route("watchlist read", "GET", "/watchlist", 200)
    by_header("progress report", "PUT", f"/progress/{title}", 202, json=PROGRESS)
    user_route("continue watching", "GET", "/progress", 200)
    user_route("resume point", "GET", f"/progress/{uuid.uuid4()}", 404)
    # Devices: a registration is the exception (any new id of her own), the rest name one.
    user_route("register", "PUT", f"/devices/new-{lane}", 202, json=DEVICE_DETAILS)
    by_path("heartbeat", "POST", "/devices/{}/heartbeat", alice.tv, 202)
    user_route("device list", "GET", "/devices", 200)
    # Commands: the sender in X-Device-ID, the target in the path; both must be hers.
    command = {"command": {"type": "play"}}
    cases.append(
        Case(
            "command: own",
            "POST",
            alice.url(f"/devices/{alice.tv}/commands"),
            OWN,
            202,
            headers=own_device,
            json=command,
        )
    )
    cases.append(
        Case(
            "command: bob's user, bob's devices",
            "POST",
            bob.url(f"/devices/{bob.tv}/commands"),
            FORBIDDEN,
            headers={"X-Device-ID": bob.phone},
            json=command,
        )
    )
    for which, device in _not_hers(alice, bob):
        cases.append(
            Case(
                f"command: {which} target",
                "POST",
                alice.url(f"/devices/{device}/commands"),
                UNKNOWN,
                headers=own_device,
                json=command,
                field="path.device_id",
            )
        )
        cases.append(
            Case(
                f"command: {which} sender",
                "POST",
                alice.url(f"/devices/{alice.tv}/commands"),
                UNKNOWN,
                headers={"X-Device-ID": device},
                json=command,
                field="header.X-Device-ID",
            )
        )
    # Realtime.
    user_route("realtime", "GET", "/realtime", 200)
    by_header("stream", "GET", "/stream", 200, stream=True)
    user_route("stream, no device", "GET", "/stream", 200, stream=True)
    by_header("stream ticket", "POST", "/stream/ticket", 200)
    # Recommendation feedback names only the user.
    # (A title of the catalog: feedback on any other is 404.)
    user_route("rating", "PUT", f"/ratings/{title}", 202, json={"rating": 4})
    user_route("dismissal", "POST", f"/dismissals/{title}", 202)
    # Removal last: it removes her spare device of this lane.
    by_path("device removal", "DELETE", "/devices/{}", f"spare-{lane}", 202)
    return cases


def _not_hers(alice: User, bob: User) -> list[tuple[str, str]]:
    return [
        ("never registered", "never-1"),
        ("removed", alice.removed),
        ("bob's", bob.phone),
    ]


async def _call(http: httpx.AsyncClient, alice: User, case: Case) -> tuple[int, dict[str, Any]]:
    headers = {**alice.headers, **case.headers}
    if case.stream:
        async with http.stream(case.method, case.url, headers=headers) as resp:
            if resp.status_code == 200:
                return 200, {}
            await resp.aread()
            return resp.status_code, resp.json()
    resp = await http.request(case.method, case.url, headers=headers, json=case.json)
    body = resp.json() if resp.content else {}
    return resp.status_code, body


def _check(case: Case, status: int, body: dict[str, Any]) -> None:
    what = f"{case.name}: {status} {body}"
    if case.expected == OWN:
        assert status == case.status, what
    elif case.expected == FORBIDDEN:
        assert (status, body.get("error")) == (403, "forbidden"), what
    else:
        assert (status, body.get("error")) == (403, "unknown_device"), what
        assert [f["field"] for f in body["fields"]] == [case.field], what
        assert body["type"] == "/problems/unknown_device", what


async def test_every_route_refuses_other_users_and_devices_not_theirs(stack: Stack) -> None:
    outcomes: dict[str, dict[str, tuple[int, str | None]]] = {}
    counts: Counter[str] = Counter()
    for lane, url in stack.lanes.items():
        outcomes[lane] = {}
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for case in matrix(stack.alice, stack.bob, lane, stack.titles):
                status, body = await _call(http, stack.alice, case)
                _check(case, status, body)
                outcomes[lane][case.name] = (status, body.get("error"))
                counts[case.expected] += 1
    # One route table, two lanes, the same answers.
    assert outcomes["fast"] == outcomes["fastapi"]
    per_lane = {k: v // 2 for k, v in counts.items()}
    print(f"\ndevice matrix, per lane: {per_lane}; both lanes: {dict(counts)}")
    routes = {name.split(":")[0] for name in outcomes["fast"]}
    print(f"{len(routes)} operations x (own, other user, unknown devices)")
    assert per_lane == {OWN: 18, FORBIDDEN: 23, UNKNOWN: 27}, per_lane


async def test_a_device_acts_as_soon_as_registered_and_is_refused_as_soon_as_removed(
    stack: Stack,
) -> None:
    """No waiting for the sync agent: the gateway marks the register when the broker accepted
    the registration or the removal."""
    alice = stack.alice
    report = alice.url(f"/progress/{uuid.uuid4()}")
    for lane, url in stack.lanes.items():
        device = f"quick-{lane}"
        acting = {**alice.headers, "X-Device-ID": device}
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            put = await http.put(
                alice.url(f"/devices/{device}"), json=DEVICE_DETAILS, headers=alice.headers
            )
            assert put.status_code == 202, put.text
            first = await http.put(report, json=PROGRESS, headers=acting)
            assert first.status_code == 202, first.text
            gone = await http.delete(alice.url(f"/devices/{device}"), headers=alice.headers)
            assert gone.status_code == 202, gone.text
            after = await http.put(report, json=PROGRESS, headers=acting)
            assert (after.status_code, after.json()["error"]) == (403, "unknown_device")
            # And once the agent applied both, still refused (its write keeps the removal).
            await wait_for(lambda h=http, d=device: _lacks(h, alice, d), timeout=30, interval=0.1)
            later = await http.put(report, json=PROGRESS, headers=acting)
            assert (later.status_code, later.json()["error"]) == (403, "unknown_device")
            # Registered again: acts again.
            again = await http.put(
                alice.url(f"/devices/{device}"), json=DEVICE_DETAILS, headers=alice.headers
            )
            assert again.status_code == 202, again.text
            back = await http.put(report, json=PROGRESS, headers=acting)
            assert back.status_code == 202, back.text


async def _lacks(http: httpx.AsyncClient, user: User, device: str) -> bool:
    return device not in await _devices(http, user)
