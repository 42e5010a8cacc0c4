"""An event a handler decided to emit, before it is wrapped in its envelope. Pure data.

Domain modules plan events as `Outgoing` values without knowing which agent runs them; the
unit of work (agents/framework/unit_of_work.py) wraps each with the agent's name as source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.envelope import Envelope, Payload
from topics.registry import TopicSpec


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: TopicSpec
    payload: Payload
    key: str
    # The id of the request or record that caused the event, so one request traces through.
    correlation_id: str | None = None

    @classmethod
    def caused_by(
        cls, cause: Envelope[Any], topic: TopicSpec, payload: Payload, key: str
    ) -> Outgoing:
        return cls(topic, payload, key, cause.correlation_id)
