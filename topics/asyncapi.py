"""The AsyncAPI 3.0 document of every topic, from the catalog, the payload models and the
consumer index (who consumes is passed in: topics/ may not import the agents).

One channel per topic and per dead-letter topic; its address carries the deployment's prefix
as a parameter. Each payload version is a message; the Kafka bindings give partitions, cleanup
policy, retention and the key. Who publishes and who consumes are operations (`send` /
`receive`), with the worker group's consumer group name.
"""

from __future__ import annotations

from typing import Any

from topics.consumers import ConsumerIndex
from topics.json_schema import ENVELOPE_DESCRIPTIONS, component_name, components
from topics.registry import DEAD_LETTER_HEADERS, DEAD_LETTER_REASONS, TopicSpec, all_topics

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMAS_REF = "#/components/schemas/"
DOCUMENT_VERSION = "1.0.0"

Document = dict[str, Any]


def channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def asyncapi_dialect(node: Any) -> Any:
    """A copy in the AsyncAPI Schema Object's words: its `discriminator` is the property's name,
    where pydantic writes OpenAPI's object (`propertyName` + `mapping`); the `oneOf` beside it
    already lists every alternative, so the mapping says nothing more."""
    if isinstance(node, dict):
        out = {k: asyncapi_dialect(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [asyncapi_dialect(v) for v in node]
    return node


def _op_id(*parts: str) -> str:
    return "__".join(p.replace(".", "_").replace("-", "_") for p in parts)


def _record_headers(spec: TopicSpec) -> dict[str, Any]:
    assert spec.payload is not None
    return {
        "type": "object",
        "description": "set by every producer, so a subscriber can route without parsing",
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"type": "string", "const": spec.payload.event_type},
            "version": {"type": "string", "description": "the payload version, as text"},
            "content-type": {"type": "string", "const": "application/json"},
            "correlation_id": {"type": "string", "description": "when the event has one"},
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    properties: dict[str, Any] = {
        name: {"type": "string", "description": text} for name, text in DEAD_LETTER_HEADERS.items()
    }
    properties["dlq.reason"]["enum"] = list(DEAD_LETTER_REASONS)
    return {
        "name": "dead_letter",
        "title": "A record set aside",
        "summary": "the original record, unchanged, with why it was set aside in its headers",
        "description": "Reasons: "
        + "; ".join(f"`{k}`: {v}" for k, v in DEAD_LETTER_REASONS.items())
        + ". The original headers are kept. `mgw dlq list|show|replay` reads and replays them.",
        "contentType": "application/octet-stream",
        "headers": {"type": "object", "required": ["dlq.reason"], "properties": properties},
        "payload": {"description": "the original record's value, byte for byte"},
    }


def build_asyncapi(
    consumers: ConsumerIndex,
    prefix: str = "mgw",
    bootstrap: str = "kafka:9092",
    topics: list[TopicSpec] | None = None,
) -> Document:
    """The document; `topics` defaults to the whole catalog (tests pass fixtures)."""
    specs = all_topics() if topics is None else topics
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in specs:
        cid = channel_id(spec.name)
        channel_ref = {"$ref": f"#/channels/{cid}"}
        channel_messages: dict[str, Any] = {}
        if spec.payload is None:
            messages["dead_letter"] = _dead_letter_message()
            channel_messages["dead_letter"] = {"$ref": "#/components/messages/dead_letter"}
        for model in spec.payloads:
            name = component_name(spec.name, model.version)
            messages[name] = {
                "name": model.event_type,
                "title": f"{model.event_type} version {model.version}",
                "summary": spec.description,
                "contentType": "application/json",
                "headers": _record_headers(spec),
                "payload": {"$ref": f"{SCHEMAS_REF}{name}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": spec.key},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
                "x-version": model.version,
                "x-current": model is spec.payload,
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        topic_config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
        if spec.retention_ms is not None:
            topic_config["retention.ms"] = spec.retention_ms
        dead_letter = spec.dead_letter
        readers = sorted(consumers.get(spec.name, ()))
        channels[cid] = {
            "address": f"{{prefix}}.{spec.name}",
            "title": spec.name,
            "description": spec.description,
            "parameters": {
                "prefix": {
                    "description": "the deployment's KAFKA_TOPIC_PREFIX",
                    "default": prefix,
                    "examples": [prefix],
                }
            },
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "partitions": spec.partitions,
                    "topicConfiguration": topic_config,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "x-key": spec.key,
            **({"x-dead-letter-channel": channel_id(dead_letter.name)} if dead_letter else {}),
            "x-producers": list(spec.producers),
            "x-consumers": [
                {
                    "group": c.group,
                    "agent": c.agent,
                    "consumerGroup": c.consumer_group(prefix),
                    "description": c.description,
                }
                for c in readers
            ],
        }
        refs = [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in channel_messages]
        operations[_op_id("publish", spec.name)] = {
            "action": "send",
            "channel": channel_ref,
            "title": f"publish {spec.name}",
            "summary": "; ".join(spec.producers) or "no producer declared",
            "messages": refs,
        }
        for consumer in readers:
            operations[_op_id("consume", spec.name, consumer.agent)] = {
                "action": "receive",
                "channel": channel_ref,
                "title": f"{consumer.agent} consumes {spec.name}",
                "summary": (
                    f"agent {consumer.agent} of worker group {consumer.group} "
                    f"(consumer group {consumer.consumer_group(prefix)})"
                ),
                "description": consumer.description,
                "messages": refs,
                "x-consumer-group": consumer.consumer_group(prefix),
            }
    envelope_doc = "; ".join(f"`{k}`: {v}" for k, v in ENVELOPE_DESCRIPTIONS.items())
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Media Gateway topics",
            "version": DOCUMENT_VERSION,
            "description": (
                "Every Kafka topic of Media Gateway, generated from the topic catalog "
                "(topics/registry.py) and the payload models (schemas/). Every record is a JSON "
                f"envelope around a typed payload: {envelope_doc}. Payload versions follow the "
                "BACKWARD_TRANSITIVE rule written down in docs/TOPICS.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": bootstrap,
                "protocol": "kafka",
                "description": "the deployment's KAFKA_BROKERS",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": asyncapi_dialect(
                components([s for s in specs if s.payload is not None], SCHEMAS_REF)
            ),
            "messages": messages,
        },
    }
