"""The next episode of a series, and continue watching that shows each series once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agents.sync import batches
from agents.sync.next_episode import Episode, latest_per_series, next_episode, series_lines
from agents.sync.progress import Position
from agents.sync.views import SeriesProgress, continue_watching_document
from schemas.envelope import Envelope, wrap
from tests.unit.sync.factories import MOVIE, USER, hlc, progress

SERIES = uuid.UUID(int=500)
OTHER_SERIES = uuid.UUID(int=600)


def ep(season: int | None, number: int | None, series: uuid.UUID = SERIES) -> Episode:
    # A fixed id per (series, place), so the same episode built twice is equal.
    key = f"{series}:{season}:{number}"
    return Episode(uuid.uuid5(uuid.NAMESPACE_URL, key), series, season, number)


# Two seasons of three, with specials and an unnumbered episode mixed in, in no order.
SHOW = [ep(2, 3), ep(1, 1), ep(0, 1), ep(2, 1), ep(1, 3), ep(1, 2), ep(2, 2), ep(None, None)]


def place(episode: Episode | None) -> tuple[int | None, int | None] | None:
    return None if episode is None else (episode.season_number, episode.episode_number)


@pytest.mark.parametrize(
    ("finished", "expected"),
    [
        ((1, 1), (1, 2)),  # mid-season
        ((2, 2), (2, 3)),
        ((1, 3), (2, 1)),  # a season's end: the next season's first
        ((2, 3), None),  # the series' end
    ],
)
def test_the_next_episode_follows_the_canonical_order(
    finished: tuple[int, int], expected: tuple[int, int] | None
) -> None:
    assert place(next_episode(ep(*finished), SHOW)) == expected


def test_specials_are_never_next_and_finishing_one_moves_nothing() -> None:
    # S0E1 sorts first by number, yet after S1E3 comes S2E1, never the special.
    assert place(next_episode(ep(1, 3), [ep(1, 3), ep(0, 1), ep(0, 9)])) is None
    assert next_episode(ep(0, 1), SHOW) is None
    assert next_episode(ep(None, None), SHOW) is None
    assert next_episode(ep(1, None), SHOW) is None


def test_a_gap_in_the_numbers_goes_on_to_the_next_listed_episode() -> None:
    gappy = [ep(1, 1), ep(1, 2), ep(1, 5), ep(3, 2)]
    assert place(next_episode(ep(1, 2), gappy)) == (1, 5)
    # Season 2 missing, season 3 starting at E2.
    assert place(next_episode(ep(1, 5), gappy)) == (3, 2)
    # The finished episode itself need not be listed (the list was read before it came in).
    assert place(next_episode(ep(1, 3), gappy)) == (1, 5)


def test_an_episode_listed_by_its_absolute_number_is_followed_by_the_next_number() -> None:
    def abs_ep(n: int, season: int | None = None) -> Episode:
        return Episode(uuid.UUID(int=900 + n), SERIES, season, None, n)

    daily = [abs_ep(1), abs_ep(2), abs_ep(4), abs_ep(3, season=0)]
    assert next_episode(abs_ep(2), daily) == abs_ep(4)  # 3 is a special, not next
    assert next_episode(abs_ep(4), daily) is None
    assert next_episode(abs_ep(3, season=0), daily) is None
    # An episode with a season follows the seasons, even when it has an absolute number too.
    seasoned = Episode(uuid.UUID(int=950), SERIES, 1, 1, 1)
    assert next_episode(seasoned, [*daily, ep(1, 2)]) == ep(1, 2)


def test_episodes_of_other_series_are_not_next() -> None:
    assert next_episode(ep(1, 1), [ep(1, 2, OTHER_SERIES)]) is None


def test_two_episodes_sharing_a_place_give_the_same_answer_in_any_order() -> None:
    a = Episode(uuid.UUID(int=7), SERIES, 1, 2)
    b = Episode(uuid.UUID(int=8), SERIES, 1, 2)
    assert next_episode(ep(1, 1), [b, a]) == next_episode(ep(1, 1), [a, b]) == a


# --- continue watching per series ------------------------------------------------------------


def at(episode: Episode, seconds: float, when: int, device: str = "phone-1") -> Position:
    return Position.of(
        progress(seconds, hlc(when), device, content_id=episode.content_id, state="paused")
    )


def document(positions: list[tuple[Position, Episode]], films: list[Position]) -> Any:
    """The document as the handler builds it from loaded rows (agents/sync/handlers.py)."""
    latest = latest_per_series(positions)
    started = {p.content_id: p for p, _ in positions if p.position_seconds < 90}
    lines = series_lines(latest, {SERIES: SHOW, OTHER_SERIES: []}, started)
    open_ = films + [p for p, _ in positions if p.position_seconds < 90]
    placed = frozenset(e.content_id for _, e in positions if e.place())
    return continue_watching_document(USER, 1, open_, SeriesProgress(lines, placed, {}))


def test_finishing_an_episode_puts_the_next_one_in_continue_watching_once() -> None:
    s2e3, s2e2, s2e1 = ep(2, 3), ep(2, 2), ep(2, 1)
    film = Position.of(progress(30, hlc(5), content_id=MOVIE, state="paused"))
    watched = [(at(s2e1, 20, 1), s2e1), (at(s2e2, 95, 10), s2e2)]
    doc = document(watched, [film])
    # One line for the series: S2E3 from the start, stamped by the finish of S2E2; S2E1's
    # old open position is not listed apart. The film, older, after it.
    assert [(i.content_id, i.position_seconds, i.up_next) for i in doc.items] == [
        (s2e3.content_id, 0.0, True),
        (MOVIE, 30.0, False),
    ]
    first = doc.items[0]
    assert (first.series_id, first.season_number, first.episode_number) == (SERIES, 2, 3)
    assert first.device_id == "phone-1" and first.timestamp == hlc(10)

    # The user already started S2E3 earlier: it resumes where they were.
    doc = document([*watched, (at(s2e3, 12, 3, "tv-1"), s2e3)], [film])
    assert (doc.items[0].content_id, doc.items[0].position_seconds) == (s2e3.content_id, 12.0)

    # Watching S2E3 now: the series' line is that episode, no longer marked up next.
    doc = document([*watched, (at(s2e3, 40, 20, "tv-1"), s2e3)], [film])
    first = doc.items[0]
    assert (first.content_id, first.up_next, first.device_id) == (s2e3.content_id, False, "tv-1")
    assert len(doc.items) == 2


def test_the_series_end_leaves_continue_watching_and_a_special_does_not_move_it() -> None:
    last, special, s1e1 = ep(2, 3), ep(0, 1), ep(1, 1)
    assert document([(at(s1e1, 10, 1), s1e1), (at(last, 99, 2), last)], []).items == []
    # A special finished after S1E1: the series stays on S1E2; the special is its own title.
    doc = document([(at(s1e1, 99, 1), s1e1), (at(special, 99, 2), special)], [])
    assert [i.content_id for i in doc.items] == [ep(1, 2).content_id]


def test_a_report_that_finishes_an_episode_announces_the_next_one() -> None:
    def report(episode: Episode, seconds: float, when: int) -> Envelope[Any]:
        update = progress(seconds, hlc(when), "phone-1", content_id=episode.content_id)
        return wrap(update, key=USER, source="test")

    s1e3, s2e1 = ep(1, 3), ep(2, 1)
    batch = [report(s1e3, 95, 1), report(s2e1, 10, 2), report(ep(2, 3), 99, 3)]
    assert batches.finished_titles(batch) == {s1e3.content_id, ep(2, 3).content_id}
    merged = batches.progress({}, batch, {SERIES: SHOW})
    up_next = [e.payload.message.up_next for e in merged.events]
    assert up_next[0] is not None
    assert (up_next[0].content_id, up_next[0].season_number, up_next[0].episode_number) == (
        s2e1.content_id,
        2,
        1,
    )
    # Not finished; finished at the series' end: nothing to announce.
    assert up_next[1:] == [None, None]
    # Without the series loaded (a film), the message is as before.
    assert batches.progress({}, batch[:1]).events[0].payload.message.up_next is None
