"""The gateway serves the published contracts: the AsyncAPI document, its readable page and the
JSON Schema of each topic version, generated from the same source as docs/TOPICS.md."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.config import RateLimitSettings, Settings
from gateway.app import create_app
from tests.contracts.test_asyncapi import errors
from topics.compatibility import RELEASED_ROOT
from topics.registry import TOPICS


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # Anonymous callers get 5 requests/s; this test is about the documents, not quotas.
    local = settings.model_copy(update={"rate_limit": RateLimitSettings(enabled=False)})
    with TestClient(create_app(local)) as c:
        yield c


def test_the_gateway_serves_the_asyncapi_document(client: TestClient, settings: Settings) -> None:
    response = client.get("/asyncapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert not errors(document)
    assert document["servers"]["production"]["host"] == settings.kafka.bootstrap
    prefix = document["channels"]["content_raw"]["parameters"]["prefix"]["default"]
    assert prefix == settings.kafka.topic_prefix
    # Consumers come from the committed index (the gateway does not import the agents).
    # The agents' receive operations (the device socket's is the gateway's own).
    receivers = [
        op
        for op in document["operations"].values()
        if op["action"] == "receive" and "x-consumer-group" in op
    ]
    assert receivers and all(op["x-consumer-group"].startswith(f"{prefix}-") for op in receivers)
    assert "device_socket" in document["channels"]


def test_the_gateway_serves_a_readable_page_of_every_topic(client: TestClient) -> None:
    response = client.get("/asyncapi")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'href="/asyncapi.json"' in page
    for spec in TOPICS:
        assert f'<h2 id="{spec.name.replace(".", "")}">{spec.name}</h2>' in page, spec.name
    assert "<script" not in page.lower()


def test_the_gateway_serves_each_released_schema(client: TestClient) -> None:
    for spec in TOPICS:
        assert spec.payload is not None
        response = client.get(f"/asyncapi/schemas/{spec.name}/v{spec.payload.version}.json")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/schema+json")
        released = RELEASED_ROOT / spec.name / f"v{spec.payload.version}.json"
        assert response.json() == json.loads(released.read_text())


def test_an_unknown_topic_or_version_is_a_404_naming_the_field(client: TestClient) -> None:
    topic = client.get("/asyncapi/schemas/no.such.topic/v1.json")
    assert topic.status_code == 404
    assert topic.json()["fields"][0]["field"] == "topic"
    version = client.get(f"/asyncapi/schemas/{TOPICS[0].name}/v99.json")
    assert version.status_code == 404
    assert version.json()["fields"][0] == {
        "field": "version",
        "reason": f"{TOPICS[0].name} has versions [1]",
    }
    assert client.get(f"/asyncapi/schemas/{TOPICS[0].name}/vx.json").status_code == 422
