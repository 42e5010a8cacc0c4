"""The envelope every record on a topic carries around its typed payload."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Payload(BaseModel):
    """Base of every payload: names its event type and schema version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1

    def upcast(self) -> Payload:
        """This payload as the next version's model.

        Only the model of an older version, kept in its topic's `older_payloads` after a
        breaking change, implements it: records of that version then stay readable.
        """
        raise NotImplementedError(f"{type(self).__name__} (version {self.version}) is current")


P = TypeVar("P", bound=Payload)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=200)
    time: datetime = Field(default_factory=utcnow)
    key: str = Field(min_length=1, max_length=500)
    correlation_id: str | None = Field(default=None, max_length=128)
    payload: P


@functools.cache
def _envelope_of(payload_type: type[P]) -> type[Envelope[P]]:
    # Envelope[X] is a class lookup through pydantic's generics machinery; cheap, but not free.
    return Envelope[payload_type]  # type: ignore[valid-type]


def wrap(
    payload: P,
    *,
    key: str,
    source: str,
    correlation_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope[P]:
    return _envelope_of(type(payload))(
        event_id=event_id or uuid.uuid4(),
        event_type=payload.event_type,
        version=payload.version,
        source=source,
        key=key,
        correlation_id=correlation_id,
        payload=payload,
    )


def encode(envelope: Envelope[Any]) -> bytes:
    # Straight to JSON bytes in pydantic's Rust serializer; the same bytes as orjson over
    # model_dump(mode="json"), without building the dict in between.
    return envelope.__pydantic_serializer__.to_json(envelope)


def _check_type_and_version(
    event_type: object, version: object, payload_type: type[Payload]
) -> None:
    if event_type != payload_type.event_type:
        raise ValueError(
            f"event_type {event_type!r} does not belong on this topic "
            f"(expects {payload_type.event_type!r})"
        )
    if isinstance(version, int) and version > payload_type.version:
        raise ValueError(
            f"version {version} of {event_type} is newer than this "
            f"consumer understands ({payload_type.version})"
        )


def decode(raw: bytes, payload_type: type[P], older: Sequence[type[Payload]] = ()) -> Envelope[P]:
    """Parse and validate; raises pydantic.ValidationError (or ValueError) on bad input.

    A record of an older version named in `older` is read with that version's model and
    upcast to `payload_type`, so consumers only ever see the current version.
    """
    if older:
        upcast = _decode_older(raw, payload_type, older)
        if upcast is not None:
            return upcast
    try:
        envelope = _envelope_of(payload_type).model_validate_json(raw)
    except ValidationError as exc:
        # A newer version's payload fails validation here; say why rather than list its fields.
        try:
            head = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise exc from None
        # Only a record that names an event type can be of another topic or a newer version;
        # one without ({"hello": 1}) is no envelope, and its missing fields say so.
        if isinstance(head, dict) and head.get("event_type") is not None:
            _check_type_and_version(head.get("event_type"), head.get("version"), payload_type)
        raise
    _check_type_and_version(envelope.event_type, envelope.version, payload_type)
    return envelope


def _decode_older(
    raw: bytes, payload_type: type[P], older: Sequence[type[Payload]]
) -> Envelope[P] | None:
    try:
        head = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # the regular path reports it
    if not isinstance(head, dict):
        return None
    model = next(
        (
            m
            for m in older
            if m.version == head.get("version") and m.event_type == head.get("event_type")
        ),
        None,
    )
    if model is None:
        return None
    envelope = _envelope_of(model).model_validate_json(raw)
    payload: Payload = envelope.payload
    while payload.version < payload_type.version:
        payload = payload.upcast()
    if not isinstance(payload, payload_type):
        raise ValueError(
            f"{model.__name__} upcasts to {type(payload).__name__}, not {payload_type.__name__}"
        )
    fields = envelope.model_dump(exclude={"payload", "version"})
    return _envelope_of(payload_type)(**fields, version=payload_type.version, payload=payload)
