"""The replies of request/reply agents on their Redis pub/sub channel, shared by the agent
runtime (which answers failures) and the gateway (which waits for answers).

An answer is whatever the agent publishes (a JSON document, or empty for "none"). A request
the agent cannot answer is answered too, at once, with a failure: `FAILURE_MARK` followed by
JSON `{"agent", "reason", "retryable"}`. No JSON document starts with the mark, so telling the
two apart is one prefix test. `retryable`: a dependency of the agent is down (the same request
may pass later); otherwise this request fails whenever it is asked (its handler failed on it,
or the agent could not read it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FAILURE_MARK = b"\x00mgw-agent-failure\x00"
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class AgentFailure:
    agent: str
    reason: str
    retryable: bool


def failure_reply(failure: AgentFailure) -> bytes:
    body = {
        "agent": failure.agent,
        "reason": failure.reason[:MAX_REASON_CHARS],
        "retryable": failure.retryable,
    }
    return FAILURE_MARK + json.dumps(body).encode()


def failure_of(message: bytes) -> AgentFailure | None:
    """The failure a reply reports, or None for an answer."""
    if not message.startswith(FAILURE_MARK):
        return None
    try:
        body = json.loads(message[len(FAILURE_MARK) :])
        return AgentFailure(str(body["agent"]), str(body["reason"]), bool(body["retryable"]))
    except (ValueError, KeyError, TypeError):
        return AgentFailure("unknown", "an unreadable failure reply", retryable=False)


def reply_channel_in(value: bytes | None) -> str | None:
    """The reply channel named by a raw request record (an envelope's payload), if any: for
    answering a record the agent could not even decode."""
    try:
        payload: Any = json.loads(value or b"")["payload"]
        channel = payload["reply_channel"]
    except (ValueError, KeyError, TypeError):
        return None
    return channel if isinstance(channel, str) and channel else None
