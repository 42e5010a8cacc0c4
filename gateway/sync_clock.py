"""Each user's hybrid logical clock, kept in Redis, where every gateway process stamps from it.

A user's operations are ordered by their HLC stamps, and one user's later operation must win
over their earlier one whichever gateway process took each, and whatever another user's
device clock says. So the clock is per user and shared: one small hash per user, moved by one
Lua script that reads Redis's own time, so every process and every host stamps from one
physical clock and no process keeps a clock of its own.

- No client stamp: the next stamp of the user's clock (the rule of `schemas.sync.next_hlc`):
  Redis's time when it moved past the clock, else the clock with its counter plus one.
- A client stamp (an edit made offline keeps its time): refused when more than
  MAX_CLOCK_AHEAD_S ahead of Redis's time; otherwise it is the operation's stamp, and the
  user's clock moves up to it, so the user's next gateway-stamped operation comes after it.

The clock outlives any accepted stamp's lead on real time (CLOCK_TTL_S), then expires: a
returning user starts from Redis's time, which is past every stamp the clock ever held.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import Request

from gateway.request_parameters import invalid
from schemas.sync import HLC, MAX_CLOCK_AHEAD_S, MAX_LOGICAL

# The rule a write's 422 names when it refuses a client stamp (tests/edge/fuzz_rules.py): the
# request's JSON Schema cannot state it.
CLOCK_RULE = (
    f"a `timestamp` more than {MAX_CLOCK_AHEAD_S} s ahead of the server's clock (fix the "
    "device's clock)"
)
# Far longer than an accepted stamp can lead Redis's time (MAX_CLOCK_AHEAD_S).
CLOCK_TTL_S = 3600

# KEYS[1] the user's clock {p: physical_us, l: logical}; ARGV: the client's physical_us and
# logical ('' and '' for none), the most a client stamp may lead, in us, MAX_LOGICAL, the TTL.
# Returns {physical_us, logical}, or {-1, Redis's time in us} when the client stamp is refused.
# Microseconds since the epoch need 51 bits: exact in Lua's doubles, and written with '%d'
# (Redis would write a bare number with 14 significant digits).
_STAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local held = redis.call('HMGET', KEYS[1], 'p', 'l')
local p, l = tonumber(held[1]), tonumber(held[2])
local sp, sl
if ARGV[1] ~= '' then
  sp, sl = tonumber(ARGV[1]), tonumber(ARGV[2])
  if sp - now > tonumber(ARGV[3]) then return {-1, now} end
  if p == nil or sp > p or (sp == p and sl > l) then p, l = sp, sl end
else
  if p == nil or now > p then p, l = now, 0
  elseif l < tonumber(ARGV[4]) then l = l + 1
  else p, l = p + 1, 0 end
  sp, sl = p, l
end
redis.call('HSET', KEYS[1], 'p', string.format('%d', p), 'l', string.format('%d', l))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {sp, sl}
"""


class ClockTooFarAhead(ValueError):
    """A client stamp would win every last-writer-wins race until real time caught up."""

    def __init__(self, stamp: HLC, now_us: int) -> None:
        self.ahead_us = stamp.physical_us - now_us
        super().__init__(f"the stamp is {self.ahead_us} us ahead of the server's clock")


def clock_key(prefix: str, user_id: str) -> str:
    # A fixed word before the user id (user ids may contain ':'), as the read models do.
    return f"{prefix}:sync:clock:{user_id}"


async def stamp(redis: aioredis.Redis, prefix: str, user_id: str, client: HLC | None = None) -> HLC:
    """The stamp of one operation of `user_id`: the client's own, or the user's clock's next."""
    script = redis.register_script(_STAMP)
    physical, logical = await script(
        keys=[clock_key(prefix, user_id)],
        args=[
            "" if client is None else str(client.physical_us),
            "" if client is None else str(client.logical),
            MAX_CLOCK_AHEAD_S * 1_000_000,
            MAX_LOGICAL,
            CLOCK_TTL_S,
        ],
    )
    if physical < 0 and client is not None:
        raise ClockTooFarAhead(client, now_us=logical)
    return HLC(physical_us=physical, logical=logical)


async def app_stamp(
    app: Any, user_id: str, client: HLC | None = None, loc: tuple[str, ...] = ("body", "timestamp")
) -> HLC:
    """An operation's stamp from the app's Redis (any transport): the client's own (offline
    edits keep when they were made), or the next of the user's clock; a client stamp too far
    ahead is a 422 on `loc`."""
    try:
        return await stamp(app.state.redis, app.state.settings.redis.key_prefix, user_id, client)
    except ClockTooFarAhead as exc:
        # Integers only: a stamp may be any size, too large for a float.
        seconds, micros = divmod(exc.ahead_us, 1_000_000)
        raise invalid(
            loc,
            f"is {seconds}.{micros // 100_000} s ahead of the server's clock (at most "
            f"{MAX_CLOCK_AHEAD_S} s tolerated); fix the device's clock",
            client.model_dump() if client else None,
        ) from None


async def operation_stamp(request: Request, user_id: str, client: HLC | None = None) -> HLC:
    """A request's operation stamp (app_stamp of the request's app)."""
    return await app_stamp(request.app, user_id, client)
