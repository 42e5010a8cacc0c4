"""The title vectors a worker process fetched for answering recommendations, kept a while.

An answer reads the vectors of ~450 candidates and anchors; fetching and converting them from
the vector store was a quarter of the agent's CPU per request (docs/SONA.md, "Figures"), for
vectors that change only when a title is embedded again. So each process keeps the ones it
fetched (bounded, oldest use forgotten first) for `ttl_s`, and forgets a title at once when
this process hears it was embedded again (`sona-vectors`). Another process may answer with a
re-embedded title's previous vector until its copy expires: a slightly stale similarity in a
ranking, never in the taste (training and folding always read the store).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable

import numpy as np
import numpy.typing as npt

from agents.adapters.vectors.store import VectorStore

ENTRIES = 50_000
TTL_S = 600.0

F32 = npt.NDArray[np.float32]


class TitleVectors:
    def __init__(
        self,
        entries: int = ENTRIES,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if entries < 1:
            raise ValueError(f"the title vector cache needs at least 1 entry, got {entries}")
        self.entries = entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._kept: OrderedDict[uuid.UUID, tuple[F32, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(self, store: VectorStore, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, F32]:
        """The vectors of the titles that have one; a title without a vector yet is asked
        again next time (it may be embedded meanwhile)."""
        now = self._clock()
        found: dict[uuid.UUID, F32] = {}
        missing: list[uuid.UUID] = []
        for cid in dict.fromkeys(ids):
            kept = self._kept.get(cid)
            if kept is not None and now - kept[1] < self.ttl_s:
                self._kept.move_to_end(cid)
                found[cid] = kept[0]
            else:
                missing.append(cid)
        if missing:
            for cid, (vector, _payload) in (await store.get(missing)).items():
                array = np.asarray(vector, dtype=np.float32)
                array.flags.writeable = False  # shared by every answer that reads it
                found[cid] = array
                self._kept[cid] = (array, now)
                self._kept.move_to_end(cid)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)
        return found

    def forget(self, ids: Collection[uuid.UUID]) -> None:
        for cid in ids:
            self._kept.pop(cid, None)
