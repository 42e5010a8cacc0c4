"""A page of notifications rendered once and stamped per user (rules.PageRenderer) is what one
pydantic model per user would have been: the same notification, the same device message (its
message id the notification's, the body the realtime sink sends), the same id as
`rules.notification` gives; and a title that happens to hold the mark is rendered per user."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agents.adapters.delivery.fanout import outbound
from agents.notifications import rules
from schemas.content import AvailabilityType
from schemas.notifications import AlertKind, Notification
from schemas.sync import NotificationMessage, RealtimeEvent, notifications_channel

TITLE = uuid.UUID(int=7)
NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
ALERT = rules.Alert(
    AlertKind.arrived,
    TITLE,
    "netflix",
    "US",
    (AvailabilityType.rental, AvailabilityType.subscription),
)


def candidate(user_id: str, *types: AvailabilityType) -> rules.Candidate:
    return rules.Candidate(user_id, types, "UTC", None, 0)


@pytest.mark.parametrize(
    "title",
    ["Dune: Part Two", 'Quotes "and" \\ back\\slashes', "00000000-0000-4000-8000-0000000a1e47"],
)
def test_a_stamped_notification_is_the_one_built_for_the_user(title: str) -> None:
    facts = rules.TitleFacts(title, None, ["drama"])
    render = rules.PageRenderer(ALERT, facts, NOW, NOW)
    window = rules.window_for(ALERT, NOW)
    users = [
        candidate("u1", AvailabilityType.subscription),
        candidate("u2", AvailabilityType.rental, AvailabilityType.subscription),
        candidate("u3:x@y|z", AvailabilityType.subscription),
    ]
    for c in users:
        planned = render.plan(c, window, None)
        wanted = rules.Alert(ALERT.kind, TITLE, "netflix", "US", c.offer_types)
        expected = rules.notification(c.user_id, wanted, facts, NOW, NOW)
        assert planned.notification_id == expected.notification_id
        assert Notification.model_validate_json(planned.body) == expected
        built = RealtimeEvent(
            user_id=c.user_id,
            message_id=expected.notification_id,
            message=NotificationMessage(notification=expected),
            occurred_at=NOW,
        )
        # Assembled without validation: what it holds and what the sink sends are the same as
        # the validated model's, and it validates back to it.
        assert planned.message == built
        sent, wanted_out = outbound(planned.message), outbound(built)
        assert sent == wanted_out
        assert RealtimeEvent.model_validate_json(planned.message.model_dump_json()) == built
        # Nothing of another user, and no mark, is left in what is stored and sent.
        assert sent.user_id == c.user_id
        assert sent.channel == notifications_channel(c.user_id)
        if "0000000a1e47" not in title:
            assert "0000000a1e47" not in planned.body
            assert b"0000000a1e47" not in sent.body
