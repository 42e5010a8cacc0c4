"""What one title weighs in a user's taste, and folding that weight into the taste sum once the
title has a vector.

    weight = rating term    if the user rated the title      (1 star -1.0 ... 5 stars +1.0)
           = engagement     else, if a session was counted   (docs/RULES.md's label: 0.2 .. 0.9)
           = 0              else
           + DISMISS_WEIGHT if the user dismissed it          (docs/RULES.md: -0.5)

A rating says more than a completion: a film finished and rated one star pulls the taste away
from it, where its completion alone would have pulled towards it. docs/SONA.md ("What was
tried") has the figures behind these choices.

Each row keeps the weight its title should have and the weight the stored taste sum holds for
it (`folded_weight`). Whatever changes the first (a viewing, a rating, a dismissal) and
whenever the vector arrives (a title embedded after it was watched), `settle` folds the
difference, at the time the title's term was first folded, so the taste always equals the
sum over the user's titles with a vector, whatever order things happened in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy.typing as npt

from agents.sona.profile import UserProfile, fold_taste
from agents.sona.viewings import ViewingState

DISMISS_WEIGHT = -0.5
RATING_NEUTRAL = 3.0
RATING_SPAN = 2.0
# Differences below this are float noise, not a change of taste.
EPSILON = 1e-9


def rating_weight(rating: int) -> float:
    """-1 at one star, 0 at three, +1 at five."""
    return (rating - RATING_NEUTRAL) / RATING_SPAN


def rating_engagement(rating: int) -> float:
    """What a rating says of the title's genres, 0-1 (the genre moving average's input)."""
    return max(rating_weight(rating), 0.0)


def taste_weight(state: ViewingState) -> float:
    if state.rating is not None:
        weight = rating_weight(state.rating)
    elif state.engagement is not None:
        weight = state.engagement
    else:
        weight = 0.0
    if state.dismissed:
        weight += DISMISS_WEIGHT
    return weight


def weighed(state: ViewingState) -> ViewingState:
    """The row with its taste weight worked out from its session and feedback."""
    return replace(state, taste_weight=taste_weight(state))


def unfolded(state: ViewingState) -> bool:
    return abs(state.taste_weight - state.folded_weight) > EPSILON


def settle(
    profile: UserProfile, state: ViewingState, vector: npt.ArrayLike | None
) -> tuple[UserProfile, ViewingState]:
    """Fold what the row's weight changed into the taste; unchanged while there is no vector."""
    if vector is None or not unfolded(state):
        return profile, state
    at = state.folded_at or state.watched_at
    profile = fold_taste(profile, vector, state.taste_weight - state.folded_weight, at)
    return profile, replace(state, folded_weight=state.taste_weight, folded_at=at)
