"""A bounded in-process LRU of users' adapters, so scoring does not wait on PostgreSQL.

Entries never expire by age: a new stored version is announced on `sona.adapter_trained`, and
every worker process evicts that user when it hears it (the broadcast `sona-adapter-versions`
of agents/sona/handlers.py).
A load that raced with such an announcement (it read the old row just before the new one was
committed) must not put the old version back: the cache remembers the newest version it was
told about per user, and refuses to keep anything older.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from agents.sona.lora import UserLoRAAdapter


@dataclass(frozen=True, slots=True)
class CachedAdapter:
    """A user's latest adapter as loaded, or `adapter=None`: the user has none stored yet
    (remembered too, so a cold-start user does not cost a query per request)."""

    version: int | None
    adapter: UserLoRAAdapter | None


class AdapterCache:
    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"the adapter cache needs at least 1 entry, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedAdapter] = OrderedDict()
        # Newest version announced per user; bounded like the entries (oldest forgotten first).
        self._announced: OrderedDict[str, int] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user_id: str) -> CachedAdapter | None:
        entry = self._entries.get(user_id)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(user_id)
        self.hits += 1
        return entry

    def put(self, user_id: str, entry: CachedAdapter) -> bool:
        """Keep a loaded adapter unless a newer version was already announced for the user."""
        announced = self._announced.get(user_id)
        if announced is not None and (entry.version or 0) < announced:
            return False
        self._entries[user_id] = entry
        self._entries.move_to_end(user_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    def announce(self, user_id: str, version: int) -> None:
        """A version was stored: drop an older cached one (a newer or equal one stays)."""
        if version > self._announced.get(user_id, 0):
            self._announced[user_id] = version
            self._announced.move_to_end(user_id)
            while len(self._announced) > self.max_entries:
                self._announced.popitem(last=False)
        entry = self._entries.get(user_id)
        if entry is not None and (entry.version or 0) < version:
            del self._entries[user_id]

    def clear(self) -> None:
        self._entries.clear()
        self._announced.clear()
