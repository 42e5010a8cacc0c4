"""The AsyncAPI 3 document: valid against the AsyncAPI 3.0.0 JSON Schema, complete (every
topic and dead-letter topic, every payload version, producers and consumers), and what
`mgw topics contracts DIR` writes."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agents.groups import ALL_AGENTS
from cli.topic_commands import consumer_index
from gateway.realtime.socket_asyncapi import CHANNEL as SOCKET_CHANNEL
from gateway.realtime.socket_asyncapi import INBOUND, OUTBOUND, with_device_socket
from tests.helpers import run_cli
from topics.asyncapi import build_asyncapi, channel_id
from topics.json_schema import DIALECT, component_name
from topics.registry import all_topics

SCHEMA = Path(__file__).parent / "asyncapi_schema" / "asyncapi-3.0.0.json"
Document = dict[str, Any]


@cache
def asyncapi_validator() -> jsonschema.Draft7Validator:
    # The official AsyncAPI 3.0.0 schema (asyncapi/spec-json-schemas, Apache-2.0, LICENSE
    # beside it): draft-07, its definitions bundled, the Kafka bindings' schemas included.
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def errors(document: Document) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in asyncapi_validator().iter_errors(document)
    ]


@cache
def document() -> Document:
    return with_device_socket(
        build_asyncapi(consumer_index(), prefix="mgw", bootstrap="kafka:9092")
    )


def test_the_document_is_valid_asyncapi_3() -> None:
    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    assert not errors(doc)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["operations"][next(iter(d["operations"]))].update(action="publish"),
        lambda d: d["channels"]["content_raw"]["bindings"]["kafka"].update(partitions="eight"),
        lambda d: d["channels"]["content_raw"].update(address=7),
        lambda d: d["info"].pop("version"),
        lambda d: d["components"]["messages"].update({"bad": {"contentType": 3}}),
    ],
    ids=["action", "kafka-binding", "address", "info", "message"],
)
def test_the_validation_rejects_a_broken_document(breakage: Any) -> None:
    broken = copy.deepcopy(document())
    breakage(broken)
    assert errors(broken)


def test_every_topic_is_a_channel_with_its_kafka_facts_versions_and_dead_letters() -> None:
    doc = document()
    channels, messages = doc["channels"], doc["components"]["messages"]
    for spec in all_topics():
        channel = channels[channel_id(spec.name)]
        assert channel["address"] == f"{{prefix}}.{spec.name}"
        kafka = channel["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions
        assert kafka["topicConfiguration"]["cleanup.policy"] == [spec.cleanup_policy]
        assert channel["x-key"] == spec.key
        assert channel["x-producers"], f"{spec.name}: set producers= in topics/registry.py"
        if spec.payload is None:
            assert set(channel["messages"]) == {"dead_letter"}
            continue
        assert channel["x-dead-letter-channel"] == channel_id(f"{spec.name}.dlq")
        for model in spec.payloads:
            name = component_name(spec.name, model.version)
            assert name in channel["messages"]
            assert messages[name]["payload"] == {"$ref": f"#/components/schemas/{name}"}
            schema = doc["components"]["schemas"][name]
            assert schema["properties"]["version"]["const"] == model.version
            assert schema["properties"]["event_type"]["const"] == model.event_type


def test_consumers_are_the_agents_with_their_consumer_groups() -> None:
    doc = document()
    receive = {
        (op["channel"]["$ref"].rsplit("/", 1)[-1], op["x-consumer-group"])
        for op in doc["operations"].values()
        if op["action"] == "receive" and op["channel"]["$ref"] != f"#/channels/{SOCKET_CHANNEL}"
    }
    expected = {(channel_id(a.topic.name), f"mgw-{a.group}") for a in ALL_AGENTS}
    assert receive == expected
    sends = {op["channel"]["$ref"] for op in doc["operations"].values() if op["action"] == "send"}
    socket = f"#/channels/{SOCKET_CHANNEL}"
    assert sends == {f"#/channels/{channel_id(s.name)}" for s in all_topics()} | {socket}


def test_the_device_socket_is_a_channel_with_every_frame() -> None:
    doc = document()
    channel = doc["channels"][SOCKET_CHANNEL]
    assert channel["address"] == "/api/v1/users/{user_id}/devices/{device_id}/socket"
    assert doc["servers"]["gateway"]["protocol"] == "wss"
    names = {
        doc["components"]["messages"][m.rsplit("/", 1)[-1]]["name"]
        for m in (r["$ref"] for r in channel["messages"].values())
    }
    assert names == set(INBOUND) | set(OUTBOUND)
    # The inbound frames' schemas are the socket's validation models: a command's body is
    # the HTTP route's CommandRequest.
    command = doc["components"]["schemas"]["DeviceSocket_in_command"]
    assert set(command["required"]) >= {"type", "target_device_id", "body"}
    assert (
        command["properties"]["body"]["$ref"] == "#/components/schemas/DeviceSocket_CommandRequest"
    )


async def test_mgw_topics_contracts_writes_a_valid_document_and_schemas(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "topics",
        "contracts",
        str(tmp_path),
        "--prefix",
        "prod",
        "--bootstrap",
        "kafka-0:9092",
        env={"PATH": "/usr/bin:/bin", "MGW_ENV_FILE": "/nonexistent/.env"},
    )
    assert code == 0, err
    written = json.loads((tmp_path / "asyncapi.json").read_text())
    assert not errors(written)
    assert written["servers"]["production"]["host"] == "kafka-0:9092"
    assert written["channels"]["content_raw"]["parameters"]["prefix"]["default"] == "prod"
    schemas = sorted((tmp_path / "schemas").glob("*/v*.json"))
    assert len(schemas) == sum(len(s.payloads) for s in all_topics())
    for path in schemas:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == DIALECT
        jsonschema.Draft202012Validator.check_schema(schema)
    page = (tmp_path / "index.html").read_text()
    assert page.startswith("<!doctype html>") and 'id="contentraw"' in page
    assert (tmp_path / "TOPICS.md").read_text().startswith("# Topics")
    assert "JSON Schemas" in out
