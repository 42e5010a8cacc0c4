"""From playback progress to viewings: which progress reports are one viewing of a title.

A device reports its position many times while a title plays; the profile and the training
must see one viewing per session, not one per report. A session is counted once, when the
title is finished (past 90 %, the sync slice's "complete") or stopped after at least 30 %
(DOMAIN's threshold; a shorter view says too little). Going back under 30 % after a counted
session starts a new one, and finishing a title finished before is a rewatch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from agents.sona.training import MIN_COMPLETION, Viewing

# The sync slice's threshold (agents/sync/progress.py): past this a title is finished.
FINISHED_ABOVE = 0.9


@dataclass(frozen=True, slots=True)
class ViewingState:
    """The latest session of one user with one title (a sona_viewings row)."""

    content_id: uuid.UUID
    completion: float
    counted: bool
    watched_at: datetime
    finished_count: int = 0
    rewatch: bool = False
    rating: int | None = None

    @property
    def watched_hour(self) -> int:
        return self.watched_at.hour

    def viewing(self) -> Viewing:
        return Viewing(completion=self.completion, rating=self.rating, rewatch=self.rewatch)


def completion_of(position_seconds: float, duration_seconds: float) -> float:
    return min(max(position_seconds / duration_seconds, 0.0), 1.0) if duration_seconds > 0 else 0.0


def on_progress(
    state: ViewingState | None,
    content_id: uuid.UUID,
    completion: float,
    stopped: bool,
    at: datetime,
) -> tuple[ViewingState, Viewing | None]:
    """The session after one progress report, and the viewing it completes (None: not yet,
    or this session was already counted)."""
    if state is None:
        state = ViewingState(content_id=content_id, completion=0.0, counted=False, watched_at=at)
    elif state.counted and completion < MIN_COMPLETION:
        # Back at the start of a title already counted: a new session.
        state = replace(
            state, completion=0.0, counted=False, rewatch=state.finished_count > 0, watched_at=at
        )
    best = max(state.completion, completion)
    state = replace(state, completion=best)
    if state.counted:
        return state, None
    finished = completion > FINISHED_ABOVE
    if not (finished or (stopped and completion >= MIN_COMPLETION)):
        return state, None
    counted = replace(
        state,
        completion=completion,
        counted=True,
        watched_at=at,
        finished_count=state.finished_count + (1 if finished else 0),
    )
    return counted, counted.viewing()
