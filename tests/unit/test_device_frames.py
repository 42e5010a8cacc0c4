"""The device socket's frames (gateway/realtime/device_frames.py) and frame budgets
(gateway/realtime/flood.py): validated like the HTTP bodies, refusals naming the field."""

from __future__ import annotations

import uuid

import orjson
import pytest

from gateway.realtime.device_frames import (
    CommandFrame,
    FrameRefused,
    ProgressFrame,
    bearer_of,
    message_frame,
    parse_frame,
)
from gateway.realtime.flood import Bucket, Budgets


def refused(raw: str) -> FrameRefused:
    with pytest.raises(FrameRefused) as caught:
        parse_frame(raw)
    return caught.value


def test_a_command_frame_carries_the_http_routes_body() -> None:
    frame = parse_frame(
        '{"type":"command","ref":"c1","target_device_id":"tv-1",'
        '"body":{"command":{"type":"seek","position_seconds":60},"ttl_seconds":9}}'
    )
    assert isinstance(frame, CommandFrame) and frame.ref == "c1"
    assert frame.body.ttl_seconds == 9 and frame.body.command.type == "seek"


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ("{nope", "(frame)", "not JSON"),
        ("[1]", "(frame)", ""),
        ('{"type":"dance"}', "type", "must be one of heartbeat, progress, command, ack"),
        ('{"ref":"x"}', "type", "must be one of"),
        ('{"type":"ack","id":"7"}', "id", "<epoch>:<ms>-<seq>"),
        (
            '{"type":"command","target_device_id":"tv 1","body":{"command":{"type":"play"}}}',
            "target_device_id",
            "pattern",
        ),
        ('{"type":"heartbeat","extra":1}', "extra", "Extra inputs"),
    ],
)
def test_a_bad_frame_names_its_field(raw: str, field: str, reason: str) -> None:
    fields = refused(raw).fields
    assert fields[0]["field"] == field and reason in fields[0]["reason"], fields


def test_a_progress_body_is_strict_as_over_http_and_the_ref_survives() -> None:
    content = str(uuid.uuid4())
    body = '{"position_seconds":"5","duration_seconds":10,"state":"playing"}'
    exc = refused(f'{{"type":"progress","ref":"p9","content_id":"{content}","body":{body}}}')
    assert exc.ref == "p9"
    assert exc.fields == [
        {"field": "body.position_seconds", "reason": "Input should be a valid number"}
    ]
    ok = parse_frame(
        f'{{"type":"progress","content_id":"{content}","body":'
        '{"position_seconds":5,"duration_seconds":10,"state":"playing"}}'
    )
    assert isinstance(ok, ProgressFrame) and ok.body.position_seconds == 5


def test_a_message_frame_embeds_the_body_unchanged() -> None:
    frame = orjson.loads(message_frame("user.a.sync", b'{"kind":"watchlist","n":1}', "e:1-0"))
    assert frame == {
        "type": "message",
        "channel": "user.a.sync",
        "id": "e:1-0",
        "data": {"kind": "watchlist", "n": 1},
    }


def test_the_bearer_comes_from_its_subprotocol_only() -> None:
    assert bearer_of(["mgw.v1", "bearer.abc.def"]) == "abc.def"
    assert bearer_of(["mgw.v1", "bearer."]) is None
    assert bearer_of(["mgw.v1"]) is None


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = Bucket(rate=2, burst=3, at=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.5) is True  # one token back after 0.5 s at 2/s
    assert bucket.take(100.5) is False


def test_a_devices_sockets_share_one_budget() -> None:
    budgets = Budgets(rate=1, burst=2)
    first, second = budgets.hold("u", "tv"), budgets.hold("u", "tv")
    assert first is second
    budgets.release("u", "tv")
    assert budgets.hold("u", "tv") is first
    budgets.release("u", "tv")
    budgets.release("u", "tv")
    assert budgets.hold("u", "tv") is not first
