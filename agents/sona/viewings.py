"""From playback progress and feedback to one row per (user, title): which progress reports
are one viewing of a title, the user's rating and dismissal of it, and what the title weighs
in the user's taste.

A device reports its position many times while a title plays; the profile and the training
must see one viewing per session, not one per report. A session is counted once, when the
title is finished (past 90 %, the sync slice's "complete") or stopped after at least 30 %
(docs/RULES.md's threshold; a shorter view says too little). Going back under 30 % after a counted
session starts a new one, and finishing a title finished before is a rewatch.

A rating or a dismissal may come before, after or without any viewing: each only sets its own
fields, and the title's taste weight (agents/sona/taste.py) is worked out from all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from agents.sona.training import MIN_COMPLETION, Viewing, engagement_label

# The sync slice's threshold (agents/sync/progress.py): past this a title is finished.
FINISHED_ABOVE = 0.9


@dataclass(frozen=True, slots=True)
class ViewingState:
    """One user's row for one title (a sona_viewings row): the latest session, the feedback,
    and the taste bookkeeping.

    `watched_at` is when the latest session (or, for a title never played, the latest
    feedback) happened; `watched_hour` is that moment's hour on the user's own clock.
    `taste_weight` is what the title should weigh in the taste; `folded_weight` what the
    stored taste sum holds for it, referenced to `folded_at`. They differ while the title has
    no vector yet (agents/sona/taste.py folds the difference once it has one).
    """

    content_id: uuid.UUID
    completion: float
    counted: bool
    watched_at: datetime
    finished_count: int = 0
    rewatch: bool = False
    rating: int | None = None
    watched_hour: int | None = None
    # The best engagement (docs/RULES.md's label without the rating term) of a counted session.
    engagement: float | None = None
    rated_at: datetime | None = None
    dismissed_at: datetime | None = None
    taste_weight: float = 0.0
    folded_weight: float = 0.0
    folded_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.watched_hour is None:
            object.__setattr__(self, "watched_hour", self.watched_at.hour)

    @property
    def dismissed(self) -> bool:
        return self.dismissed_at is not None

    @property
    def seen(self) -> bool:
        """Finished, rated or dismissed: never recommended to this user again."""
        return self.finished_count > 0 or self.rating is not None or self.dismissed

    def viewing(self) -> Viewing:
        return Viewing(completion=self.completion, rating=self.rating, rewatch=self.rewatch)

    def label(self) -> float | None:
        """What the adapter's training scores this title towards, 0-1: 0 for a dismissal; the
        rating on the whole scale (1 star 0 ... 5 stars 1) for a rated title; the label of
        docs/RULES.md for a counted viewing without a rating; None when there is nothing to learn
        (a short view, unrated). That label squeezes ratings into 0.4-0.7, too little contrast for
        the adapter to learn from (docs/SONA.md, "Quality")."""
        if self.dismissed:
            return 0.0
        if self.rating is not None:
            return (self.rating - 1) / 4
        return self.engagement


def completion_of(position_seconds: float, duration_seconds: float) -> float:
    return min(max(position_seconds / duration_seconds, 0.0), 1.0) if duration_seconds > 0 else 0.0


def _hour(at: datetime, tz: tzinfo | None) -> int:
    return (at.astimezone(tz) if tz is not None else at).hour


def fresh_state(content_id: uuid.UUID, at: datetime, tz: tzinfo | None = None) -> ViewingState:
    return ViewingState(
        content_id=content_id,
        completion=0.0,
        counted=False,
        watched_at=at,
        watched_hour=_hour(at, tz),
    )


def on_progress(
    state: ViewingState | None,
    content_id: uuid.UUID,
    completion: float,
    stopped: bool,
    at: datetime,
    tz: tzinfo | None = None,
) -> tuple[ViewingState, Viewing | None]:
    """The session after one progress report, and the viewing it completes (None: not yet,
    or this session was already counted). `tz`: the user's zone, for the local hour."""
    if state is None:
        state = fresh_state(content_id, at, tz)
    elif state.counted and completion < MIN_COMPLETION:
        # Back at the start of a title already counted: a new session.
        state = replace(
            state,
            completion=0.0,
            counted=False,
            rewatch=state.finished_count > 0,
            watched_at=at,
            watched_hour=_hour(at, tz),
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
        watched_hour=_hour(at, tz),
        finished_count=state.finished_count + (1 if finished else 0),
    )
    implicit = engagement_label(Viewing(completion=completion, rewatch=counted.rewatch))
    if implicit is not None:
        counted = replace(counted, engagement=max(implicit, counted.engagement or 0.0))
    return counted, counted.viewing()


def on_rating(
    state: ViewingState | None,
    content_id: uuid.UUID,
    rating: int,
    at: datetime,
    tz: tzinfo | None = None,
) -> ViewingState | None:
    """The row after a rating given at `at`; None when a later rating is already kept (the
    latest rating counts, whatever order they arrive in)."""
    if state is None:
        state = fresh_state(content_id, at, tz)
    elif state.rated_at is not None and state.rated_at >= at:
        return None
    return replace(state, rating=rating, rated_at=at)


def on_dismissal(
    state: ViewingState | None, content_id: uuid.UUID, at: datetime, tz: tzinfo | None = None
) -> ViewingState | None:
    """The row after "not interested"; None when the title was dismissed already."""
    if state is None:
        state = fresh_state(content_id, at, tz)
    elif state.dismissed:
        return None
    return replace(state, dismissed_at=at)
