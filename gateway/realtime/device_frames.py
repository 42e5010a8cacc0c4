"""The device WebSocket's frames (docs/DEVICE_PROTOCOL.md): what a device may send, parsed and
validated like the HTTP body of the same operation, and how each outbound frame is written.
Pure: no I/O.

Inbound (JSON text frames, `type` says which):
- `heartbeat`: `body` is POST .../devices/{id}/heartbeat's body (optional);
- `progress`: `content_id` and `body`, PUT .../progress/{content_id}'s body;
- `command`: `target_device_id` and `body`, POST .../devices/{target}/commands's body;
- `ack`: `id`, an event id this socket delivered.
Each may carry `ref` (the device's own label, at most 64 characters), echoed on the answer.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agreements.sync_realtime import MAX_ID_PART, is_event_id
from gateway.device_operations import CommandRequest, Heartbeat, ProgressReport
from gateway.json_body import parse_strict
from gateway.problems import problem
from gateway.request_parameters import DEVICE_ID_PATTERN

SUBPROTOCOL = "mgw.v1"
BEARER_PREFIX = "bearer."
REF_MAX = 64


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str | None = Field(default=None, min_length=1, max_length=REF_MAX)


class HeartbeatFrame(_Frame):
    type: Literal["heartbeat"]
    body: Heartbeat = Field(default_factory=Heartbeat)


class ProgressFrame(_Frame):
    type: Literal["progress"]
    content_id: uuid.UUID
    body: ProgressReport


class CommandFrame(_Frame):
    type: Literal["command"]
    target_device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    body: CommandRequest


class AckFrame(_Frame):
    type: Literal["ack"]
    id: str

    @field_validator("id")
    @classmethod
    def _an_event_id(cls, value: str) -> str:
        if not is_event_id(value):
            raise ValueError(
                "must be an event id this socket delivered, `<epoch>:<ms>-<seq>`, each number "
                f"at most {MAX_ID_PART} written without leading zeros"
            )
        return value


InboundFrame = Annotated[
    HeartbeatFrame | ProgressFrame | CommandFrame | AckFrame, Field(discriminator="type")
]


class Inbound(BaseModel):
    """The one frame (a wrapper: the union is parsed with parse_strict like an HTTP body)."""

    frame: InboundFrame


FRAME_TYPES = ("heartbeat", "progress", "command", "ack")


class FrameRefused(ValueError):
    """A frame that fails validation: its fields (field, reason), as a 422's `fields`."""

    def __init__(self, fields: list[dict[str, str]], ref: str | None = None) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['reason']}" for f in fields))
        self.fields = fields
        self.ref = ref


def _field_of(loc: tuple[Any, ...]) -> str:
    # The union's tag comes first in pydantic's loc ("command", "body", ...): not a field.
    parts = [str(p) for p in loc]
    if parts and parts[0] in FRAME_TYPES:
        parts = parts[1:]
    return ".".join(parts) or "(frame)"


def _ref_of(raw: str | bytes) -> str | None:
    """The frame's `ref`, when it is readable, so that even a refused frame's error names it."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    ref = value.get("ref") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) and 0 < len(ref) <= REF_MAX else None


def parse_frame(raw: str | bytes) -> HeartbeatFrame | ProgressFrame | CommandFrame | AckFrame:
    """The frame, validated strictly (as HTTP bodies are); FrameRefused naming each bad field."""
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return parse_strict(b'{"frame":' + data + b"}", Inbound).frame
    except ValidationError as exc:
        fields = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])[1:]  # without the wrapper's "frame"
            reason = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "json_invalid":
                loc, reason = (), "not JSON: " + str(err.get("ctx", {}).get("error", reason))
            elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc, reason = ("type",), f"must be one of {', '.join(FRAME_TYPES)}"
            elif err["type"] in ("model_type", "model_attributes_type") and not loc:
                reason = "a frame is a JSON object"
            fields.append({"field": _field_of(loc), "reason": reason})
        raise FrameRefused(fields, _ref_of(data)) from None


# --- outbound ----------------------------------------------------------------------------------


def message_frame(channel: str, data: bytes, event_id: str | None) -> bytes:
    """A channel's message: `data` is the body exactly as on the SSE stream (already JSON)."""
    head = {"type": "message", "channel": channel, "id": event_id}
    return orjson.dumps(head)[:-1] + b',"data":' + data + b"}"


def event_frame(kind: str, data: bytes, event_id: str | None) -> bytes:
    """`ready` / `resync` (the SSE stream's events of those names), or any other kind."""
    head = {"type": kind, "id": event_id}
    return orjson.dumps(head)[:-1] + b',"data":' + data + b"}"


def accepted_frame(op: str, ref: str | None, data: dict[str, Any]) -> bytes:
    """The broker has the event of an inbound frame: the HTTP route's 202 body."""
    return orjson.dumps({"type": "accepted", "op": op, "ref": ref, "data": data})


def error_frame(
    status: int,
    code: str,
    detail: str,
    instance: str,
    ref: str | None = None,
    fields: list[dict[str, str]] | None = None,
) -> bytes:
    """An inbound frame refused: the problem the HTTP route would answer, in `data`."""
    body = problem(status, code, detail, instance, fields)
    return orjson.dumps({"type": "error", "ref": ref, "data": body})


def problem_frame(status: int, code: str, detail: str, instance: str) -> bytes:
    """The socket ends because of a failure (the SSE stream's `problem` event)."""
    return orjson.dumps({"type": "problem", "data": problem(status, code, detail, instance)})


def bearer_of(offered: list[str]) -> str | None:
    """The token of a `bearer.<token>` subprotocol, if one was offered."""
    for proto in offered:
        if proto.startswith(BEARER_PREFIX) and len(proto) > len(BEARER_PREFIX):
            return proto[len(BEARER_PREFIX) :]
    return None
