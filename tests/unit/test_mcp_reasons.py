"""The MCP server's pure parts: a refusal's reason read from either error shape the API may
answer, where a title can be watched now, and the remote command an action makes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from assistant.gateway_api import api_error
from assistant.models import remote_command, title_details

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
TITLE = uuid.uuid4()


def response(status: int, body: object = None, text: str = "", **headers: str) -> httpx.Response:
    if body is not None:
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, text=text, headers=headers)


def test_the_projects_error_body_is_read_field_by_field() -> None:
    body = {
        "error": "validation_failed",
        "message": "1 field(s) failed validation",
        "fields": [{"field": "path.device_id", "reason": "a device does not command itself"}],
        "request_id": "r-1",
    }
    error = api_error(response(422, body))
    assert error.reason() == {
        "status": 422,
        "error": "validation_failed",
        "message": "1 field(s) failed validation",
        "fields": [{"field": "path.device_id", "reason": "a device does not command itself"}],
        "request_id": "r-1",
    }
    assert str(error) == (
        "422 validation_failed: 1 field(s) failed validation "
        "(path.device_id: a device does not command itself)"
    )


def test_a_problem_document_keeps_its_code_detail_and_fields() -> None:
    problem = {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "missing scope: devices:command",
        "error": "forbidden",
        "fields": [],
    }
    error = api_error(response(403, problem, **{"X-Request-ID": "r-2"}))
    assert (error.error, error.message, error.request_id) == (
        "forbidden",
        "missing scope: devices:command",
        "r-2",
    )
    # Without the extension member, the problem's type is the code and its title the message.
    error = api_error(response(404, {"type": "https://errors/not-found", "title": "Not Found"}))
    assert (error.error, error.message) == ("https://errors/not-found", "Not Found")


def test_a_body_of_no_known_shape_keeps_its_status_and_an_excerpt() -> None:
    error = api_error(response(502, text="<html>bad gateway</html>" + "x" * 500))
    assert (error.status, error.error) == (502, "http_502")
    assert error.message.startswith("<html>bad gateway") and len(error.message) == 200
    assert api_error(response(500, text="")).message == "Internal Server Error"


def offer(platform: str, regions: list[str], **times: str) -> dict[str, object]:
    return {"platform": platform, "availability_type": "subscription", "regions": regions, **times}


def test_where_to_watch_is_what_is_open_now_in_the_region() -> None:
    document = {
        "canonical_id": str(TITLE),
        "title": "Heat",
        "content_type": "movie",
        "availability": [
            offer("netflix", ["US", "GB"]),
            offer("hulu", ["US"], available_until="2026-12-01T00:00:00Z"),  # ended
            offer("max", ["US"], available_from="2026-12-24T00:00:00Z"),  # not yet
            offer("prime_video", ["DE"]),
            offer("tubi", []),  # no region left: the title left the platform
        ],
    }
    us = title_details(document, "us", NOW)
    assert us.region == "US"
    assert [o.platform for o in us.where_to_watch] == ["netflix"]
    anywhere = title_details(document, None, NOW)
    assert [o.platform for o in anywhere.where_to_watch] == ["netflix", "prime_video"]


def test_each_action_makes_the_apis_command_or_names_what_it_lacks() -> None:
    assert remote_command("play", None, None) == {"type": "play"}
    assert remote_command("pause", 5, None) == {"type": "pause"}
    assert remote_command("seek", 90.5, None) == {"type": "seek", "position_seconds": 90.5}
    assert remote_command("load", None, TITLE) == {
        "type": "load_content",
        "content_id": str(TITLE),
        "start_position": 0,
    }
    assert remote_command("load", 60, TITLE)["start_position"] == 60  # type: ignore[index]
    assert remote_command("seek", None, None)[0] == "position_seconds"
    assert remote_command("load", 60, None)[0] == "content_id"
