"""The device WebSocket in the AsyncAPI 3 document (topics/asyncapi.py builds the topics; it may
not import the gateway, so the gateway hands it this part): a `ws` server, the socket's
channel, the frames as messages with their JSON Schemas (from the models the socket validates
with, gateway/realtime/device_frames.py), and two operations from the gateway's side: it
receives the device's frames and sends the events. docs/DEVICE_PROTOCOL.md is the prose.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from gateway.realtime.device_frames import (
    REF_MAX,
    SUBPROTOCOL,
    AckFrame,
    CommandFrame,
    HeartbeatFrame,
    ProgressFrame,
)
from gateway.request_parameters import DEVICE_ID_PATTERN, USER_ID_PATTERN

CHANNEL = "device_socket"
PREFIX = "DeviceSocket_"
_REF = "#/components/schemas/"

_EVENT_ID = {"type": ["string", "null"], "description": "the event's place in the user's stream"}
_REF_FIELD = {
    "type": ["string", "null"],
    "maxLength": REF_MAX,
    "description": "the `ref` of the frame answered",
}


def _outbound(kind: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    return {
        "type": "object",
        "required": ["type", "data"],
        "properties": {"type": {"const": kind}, **(extra or {}), "data": data},
    }


_PROBLEM = {"type": "object", "description": "a problem object, as every HTTP error's body"}
OUTBOUND: dict[str, tuple[str, Any]] = {
    "message": (
        "one message of a channel, its body exactly as on the SSE stream and PubNub",
        _outbound(
            "message",
            {"type": "object"},
            {"channel": {"type": "string"}, "id": _EVENT_ID},
        ),
    ),
    "ready": (
        "the socket is live (catch-up done)",
        _outbound("ready", {"type": "object"}, {"id": _EVENT_ID}),
    ),
    "resync": (
        "messages may have been missed: reload state with the GETs",
        _outbound("resync", {"type": "object"}, {"id": _EVENT_ID}),
    ),
    "accepted": (
        "the broker has the event of an inbound frame: the HTTP route's 202 body",
        _outbound(
            "accepted",
            {"type": "object"},
            {"op": {"enum": ["heartbeat", "progress", "command"]}, "ref": _REF_FIELD},
        ),
    ),
    "error": (
        "an inbound frame refused, with the HTTP route's problem",
        _outbound("error", _PROBLEM, {"ref": _REF_FIELD}),
    ),
    "expired": (
        "the credential the socket was opened with expired; close 4001 follows",
        _outbound("expired", {"type": "object"}, {"id": _EVENT_ID}),
    ),
    "revoked": (
        "the device was removed; close 4003 follows: do not reconnect as it",
        _outbound("revoked", {"type": "object"}, {"id": _EVENT_ID}),
    ),
    "problem": (
        "the socket ends (Redis lost, shutdown); resume with last_event_id",
        _outbound("problem", _PROBLEM),
    ),
}
INBOUND: dict[str, type[BaseModel]] = {
    "heartbeat": HeartbeatFrame,
    "progress": ProgressFrame,
    "command": CommandFrame,
    "ack": AckFrame,
}


def _prefixed(node: Any) -> Any:
    """Refs and $defs renamed into the socket's own namespace of components."""
    if isinstance(node, dict):
        return {
            k: (_REF + PREFIX + v.removeprefix(_REF) if k == "$ref" else _prefixed(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_prefixed(v) for v in node]
    return node


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, model in INBOUND.items():
        schema = TypeAdapter(model).json_schema(ref_template=_REF + "{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            out[PREFIX + def_name] = _prefixed(definition)
        out[f"{PREFIX}in_{name}"] = _prefixed(schema)
    for name, (_, schema) in OUTBOUND.items():
        out[f"{PREFIX}out_{name}"] = schema
    return out


def _dialect(node: Any) -> Any:
    # The AsyncAPI Schema Object's `discriminator` is the property's name (topics/asyncapi.py).
    if isinstance(node, dict):
        out = {k: _dialect(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_dialect(v) for v in node]
    return node


def device_socket_asyncapi(host: str = "gateway.example:443") -> dict[str, Any]:
    """The socket's servers, channels, operations and components, merged into the document."""
    messages: dict[str, Any] = {}
    for name, model in INBOUND.items():
        doc = (model.__doc__ or "").strip()
        messages[f"{PREFIX}in_{name}"] = {
            "name": name,
            "title": f"device -> gateway: {name}",
            "summary": doc or f"the `{name}` frame",
            "contentType": "application/json",
            "payload": {"$ref": f"{_REF}{PREFIX}in_{name}"},
        }
    for name, (summary, _) in OUTBOUND.items():
        messages[f"{PREFIX}out_{name}"] = {
            "name": name,
            "title": f"gateway -> device: {name}",
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"{_REF}{PREFIX}out_{name}"},
        }
    channel_messages = {m: {"$ref": f"#/components/messages/{m}"} for m in messages}
    ref = {"$ref": f"#/channels/{CHANNEL}"}

    def refs(direction: str) -> list[dict[str, str]]:
        return [
            {"$ref": f"#/channels/{CHANNEL}/messages/{m}"}
            for m in messages
            if m.startswith(f"{PREFIX}{direction}_")
        ]

    return {
        "servers": {
            "gateway": {
                "host": host,
                "protocol": "wss",
                "description": "the gateway's public address (ws:// without TLS); auth: the "
                f"subprotocols [{SUBPROTOCOL!r}, 'bearer.<token>'], Authorization: Bearer, or "
                "?ticket=",
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/api/v1/users/{user_id}/devices/{device_id}/socket",
                "title": "device WebSocket",
                "description": "one device's socket: the events its SSE stream would carry, "
                "and its heartbeat, progress, command and ack frames (docs/DEVICE_PROTOCOL.md)",
                "servers": [{"$ref": "#/servers/gateway"}],
                "parameters": {
                    "user_id": {"description": f"the user's id ({USER_ID_PATTERN})"},
                    "device_id": {
                        "description": f"a device registered to the user ({DEVICE_ID_PATTERN})"
                    },
                },
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "ticket": {"type": "string"},
                                "last_event_id": {"type": "string"},
                                "channels": {"type": "string"},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "device_socket__receive_frames": {
                "action": "receive",
                "channel": ref,
                "title": "the gateway receives a device's frames",
                "messages": refs("in"),
            },
            "device_socket__send_events": {
                "action": "send",
                "channel": ref,
                "title": "the gateway sends a device its events and answers",
                "messages": refs("out"),
            },
        },
        "messages": messages,
        "schemas": _dialect(_schemas()),
    }


def merge_into(document: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """`document` with the socket's part added (no name of either is replaced)."""
    for key in ("servers", "channels", "operations"):
        clash = set(document[key]) & set(part[key])
        assert not clash, clash
        document[key] = {**document[key], **part[key]}
    components = document["components"]
    for key in ("messages", "schemas"):
        clash = set(components[key]) & set(part[key])
        assert not clash, clash
        components[key] = {**components[key], **part[key]}
    return document


def with_device_socket(document: dict[str, Any]) -> dict[str, Any]:
    """The topics' AsyncAPI document with the device socket added."""
    return merge_into(document, device_socket_asyncapi())
