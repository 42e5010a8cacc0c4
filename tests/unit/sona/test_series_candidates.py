"""A series' episodes found by a source are one candidate: their series."""

from __future__ import annotations

import uuid

from agents.sona.sources import to_series

SERIES, FILM = uuid.UUID(int=1), uuid.UUID(int=2)
E1, E2 = uuid.UUID(int=11), uuid.UUID(int=12)


def test_episodes_give_their_best_score_to_their_series() -> None:
    scores = {E1: 0.4, E2: 0.7, FILM: 0.5}
    assert to_series(scores, {E1: SERIES, E2: SERIES}) == {SERIES: 0.7, FILM: 0.5}


def test_the_series_own_score_competes_with_its_episodes() -> None:
    assert to_series({SERIES: 0.9, E1: 0.2}, {E1: SERIES}) == {SERIES: 0.9}
    assert to_series({E1: 0.2}, {}) == {E1: 0.2}
