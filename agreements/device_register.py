"""Which devices each user has registered, kept in Redis for the gateway's ownership check
(gateway/device_ownership.py) on every request that names a device.

One hash per user, `{prefix}:sync:device-register:{user}`: a field per device the user ever
registered or removed, holding the device's membership stamp and state,
`<physical_us>:<logical>:a` (registered) or `...:r` (removed), plus the field `~complete` once
the sync agent has written every device it holds for the user.

No I/O here: both writers run MARK_SCRIPT with their own client (gateway/device_ownership.py,
agents/sync/store.py), so the merge rule is the one script.

Two writers, one rule. The sync agent writes every device of each user it merges or loads
(removed ones included); the gateway writes the one device of a registration or a removal as
soon as the broker accepted it, so a device registered a moment ago is known before the agent
applied it (registration is 202-async), and a removed one is refused at once. A value replaces
the held one only when its stamp is newer, and on equal stamps a removal wins: the order of
agents/sync/devices.py, so whichever writer comes last the field ends as PostgreSQL will.
Fields are never deleted (a removal is a field too), so the agent's full write cannot erase a
registration the gateway marked and the agent has not merged yet.

The check reads the device's field and `~complete` in one HMGET: a field decides; no field and
`~complete` means "not this user's device"; neither means the hash is not loaded (expired with
the read model, or Redis lost it), and the gateway falls back to the devices document.
"""

from __future__ import annotations

from collections.abc import Mapping

from agreements.sync_documents import DOCUMENT_TTL_S
from schemas.sync import HLC

# Never a device id: '~' is outside DEVICE_ID_PATTERN.
COMPLETE = "~complete"
REGISTERED = "a"
REMOVED = "r"

# KEYS[1] the user's hash (register_key); ARGV (mark_arguments): the TTL, '1' when this write
# holds every device of the user, then (field, value) pairs. Stamps are compared as numbers
# (microseconds since the epoch need 51 bits: exact in Lua's doubles); on equal stamps
# 'r' > 'a': a removal wins.
MARK_SCRIPT = """
local function newer(new, held)
  local np, nl, ns = string.match(new, '^(%d+):(%d+):(%a)$')
  local hp, hl, hs = string.match(held, '^(%d+):(%d+):(%a)$')
  if hp == nil then return true end
  np, nl, hp, hl = tonumber(np), tonumber(nl), tonumber(hp), tonumber(hl)
  if np ~= hp then return np > hp end
  if nl ~= hl then return nl > hl end
  return ns > hs
end
for i = 3, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if not held or newer(ARGV[i + 1], held) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], '~complete', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def register_key(prefix: str, user_id: str) -> str:
    # A fixed word before the user id (user ids may contain ':'), as the read models do.
    return f"{prefix}:sync:device-register:{user_id}"


def membership(stamp: HLC, registered: bool) -> str:
    return f"{stamp.physical_us}:{stamp.logical}:{REGISTERED if registered else REMOVED}"


def is_registered(value: bytes | str) -> bool:
    """Whether a held field says registered (its last letter)."""
    last = value[-1:]
    return last in (b"a", "a")


def mark_arguments(complete: bool, devices: Mapping[str, tuple[HLC, bool]]) -> list[str | int]:
    """MARK_SCRIPT's ARGV for one user's hash: `complete` when these are every device the user
    has (the sync agent's write), else only the named ones (the gateway's)."""
    args: list[str | int] = [DOCUMENT_TTL_S, "1" if complete else "0"]
    for device_id, (stamp, registered) in devices.items():
        args += [device_id, membership(stamp, registered)]
    return args
