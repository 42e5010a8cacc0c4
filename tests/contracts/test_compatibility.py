"""The compatibility gate: the code against the released schemas under BACKWARD_TRANSITIVE
rules, on the real catalog and on fixture topics changed in every way the rule names."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import pytest
from pydantic import BaseModel, Field

from agents.framework import runtime
from agents.framework.runtime import Record, decode_batch
from cli.topic_commands import consumer_index
from schemas.envelope import Payload, decode, encode, wrap
from topics.compatibility import RELEASED_ROOT, Problem, check, release
from topics.published import in_step
from topics.registry import DEAD_LETTER_HEADERS, DEAD_LETTER_REASONS, TOPICS, TopicSpec

# -- the real catalog -----------------------------------------------------------------------


def test_the_catalog_matches_its_released_schemas() -> None:
    problems = check(RELEASED_ROOT, list(TOPICS))
    breaking = [str(p) for p in problems if p.breaking]
    assert not breaking, "\n".join(breaking)
    assert not problems, "\n".join(map(str, problems)) + "\nrun `mgw topics release`"


def test_generated_docs_and_consumer_index_are_in_step() -> None:
    state = in_step(RELEASED_ROOT, consumer_index())
    assert not state.stale, f"stale: {[str(p) for p in state.stale]}; run `mgw topics release`"


def test_the_runtime_writes_the_dead_letter_contract() -> None:
    record = Record("t", 1, 2, b"k", b"v", [("event_id", b"e"), ("dlq.reason", b"old")])
    letter = runtime.DeadLetter(record, "invalid", "why")
    headers = runtime.dead_letter_headers(letter, "agent-a")
    written = {k for k, _ in headers if k.startswith("dlq.")}
    assert written == set(DEAD_LETTER_HEADERS)
    assert ("event_id", b"e") in headers and ("dlq.reason", b"old") not in headers
    source = Path(runtime.__file__).read_text()
    reasons = set(re.findall(r'DeadLetter\([^,]+,\s*"([a-z_]+)"', source))
    assert reasons and reasons <= set(DEAD_LETTER_REASONS)


# -- fixture topics -----------------------------------------------------------------------------


class Genre(StrEnum):
    drama = "drama"
    comedy = "comedy"


class FewerGenres(StrEnum):
    drama = "drama"


class MoreGenres(StrEnum):
    drama = "drama"
    comedy = "comedy"
    horror = "horror"


class Thing(Payload):
    """The released version 1 of a fixture topic."""

    event_type: ClassVar[str] = "test.thing"
    thing_id: uuid.UUID
    title: str = Field(max_length=100)
    genre: Genre
    count: int = Field(ge=0)
    note: str | None = None

    def upcast(self) -> ThingV2:
        # Used once version 2 exists (below): version 1 records then read as version 2.
        return ThingV2(**{**self.model_dump(), "count": str(self.count)})


def spec_of(model: type[Payload], older: tuple[type[Payload], ...] = ()) -> TopicSpec:
    return TopicSpec(name="test.thing", payload=model, key="thing_id", older_payloads=older)


# Changes within version 1 (the same event type and version, another shape).


class _V1(Payload):
    event_type: ClassVar[str] = "test.thing"
    thing_id: uuid.UUID
    genre: Genre


class OptionalAdded(_V1):
    title: str = Field(max_length=100)
    count: int = Field(ge=0)
    note: str | None = None
    rating: float | None = None


class EnumWidened(Payload):
    event_type: ClassVar[str] = "test.thing"
    thing_id: uuid.UUID
    title: str = Field(max_length=100)
    genre: MoreGenres
    count: int = Field(ge=0)
    note: str | None = None


class Loosened(_V1):
    title: str = Field(max_length=200)
    count: int
    note: str | None = None


class Nullable(_V1):
    title: str = Field(max_length=100)
    count: int | None = None
    note: str | None = None


class RequiredAdded(_V1):
    title: str = Field(max_length=100)
    count: int = Field(ge=0)
    note: str | None = None
    year: int


class Removed(_V1):
    title: str = Field(max_length=100)
    count: int = Field(ge=0)


class Retyped(_V1):
    title: str = Field(max_length=100)
    count: str
    note: str | None = None


class EnumNarrowed(Payload):
    event_type: ClassVar[str] = "test.thing"
    thing_id: uuid.UUID
    title: str = Field(max_length=100)
    genre: FewerGenres
    count: int = Field(ge=0)
    note: str | None = None


class Tightened(_V1):
    title: str = Field(max_length=50)
    count: int = Field(ge=0)
    note: str | None = None


class MadeRequired(_V1):
    title: str = Field(max_length=100)
    count: int = Field(ge=0)
    note: str


class NotNullable(_V1):
    title: str = Field(max_length=100)
    count: int = Field(ge=0)
    note: str = "x"


@pytest.fixture
def released(tmp_path: Path) -> Path:
    written, breaking = release(tmp_path, [spec_of(Thing)])
    assert not breaking and [p.name for p in written] == ["v1.json"]
    return tmp_path


def breaking(root: Path, spec: TopicSpec) -> list[Problem]:
    return [p for p in check(root, [spec]) if p.breaking]


def test_an_unchanged_topic_passes(released: Path) -> None:
    assert check(released, [spec_of(Thing)]) == []


@pytest.mark.parametrize(
    "changed",
    [
        OptionalAdded,
        EnumWidened,
        Loosened,
        Nullable,
    ],
    ids=["optional-field-added", "enum-value-added", "constraint-loosened", "made-nullable"],
)
def test_additive_changes_pass_and_are_released(released: Path, changed: type[Payload]) -> None:
    problems = check(released, [spec_of(changed)])
    assert problems and not [p for p in problems if p.breaking]
    assert "mgw topics release" in problems[0].message
    written, refused = release(released, [spec_of(changed)])
    assert [p.name for p in written] == ["v1.json"] and not refused
    assert check(released, [spec_of(changed)]) == []


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (RequiredAdded, "year: required field added"),
        (Removed, "note: field removed"),
        (Retyped, "count: retyped from integer to string"),
        (EnumNarrowed, "genre: enum value(s) removed: comedy"),
        (Tightened, "title: maxLength lowered to 50"),
        (MadeRequired, "note: field made required"),
        (NotNullable, "note: retyped"),
    ],
    ids=[
        "required-added",
        "field-removed",
        "retyped",
        "enum-value-removed",
        "tightened",
        "made-required",
        "null-removed",
    ],
)
def test_breaking_changes_fail_and_release_refuses(
    released: Path, changed: type[Payload], expected: str
) -> None:
    (problem,) = breaking(released, spec_of(changed))
    assert expected in problem.message, problem.message
    assert "Raise" in problem.message and "older_payloads" in problem.message
    before = (released / "test.thing" / "v1.json").read_text()
    written, refused = release(released, [spec_of(changed)])
    assert written == [] and refused
    assert (released / "test.thing" / "v1.json").read_text() == before


class ThingV2(Payload):
    """Version 2: `count` became a label (a breaking change, so a new version)."""

    event_type: ClassVar[str] = "test.thing"
    version: ClassVar[int] = 2
    thing_id: uuid.UUID
    title: str = Field(max_length=100)
    genre: Genre
    count: str
    note: str | None = None


def test_a_raised_version_that_keeps_the_old_one_readable_passes(released: Path) -> None:
    spec = spec_of(ThingV2, older=(Thing,))
    problems = check(released, [spec])
    assert [(p.version, p.breaking) for p in problems] == [(2, False)]
    written, _ = release(released, [spec])
    assert [p.name for p in written] == ["v2.json"]
    assert check(released, [spec]) == []
    # Transitive: version 1 is still compared with its own release.
    assert breaking(released, spec_of(ThingV2, older=(Retyped,)))


def test_a_raised_version_that_drops_the_old_one_fails(released: Path) -> None:
    (problem,) = breaking(released, spec_of(ThingV2))
    assert problem.version == 1 and "no model of version 1 is left" in problem.message


def test_a_released_topic_cannot_disappear(released: Path) -> None:
    (problem,) = [p for p in check(released, []) if p.breaking]
    assert "no longer in the catalog" in problem.message


def test_older_records_are_read_as_the_current_version() -> None:
    thing = Thing(thing_id=uuid.uuid4(), title="Heat", genre=Genre.drama, count=3)
    raw = encode(wrap(thing, key=str(thing.thing_id), source="test"))
    envelope = decode(raw, ThingV2, (Thing,))
    assert envelope.version == 2 and envelope.payload == ThingV2(
        thing_id=thing.thing_id, title="Heat", genre=Genre.drama, count="3"
    )
    spec = spec_of(ThingV2, older=(Thing,))
    decoded = decode_batch([Record("t", 0, 0, b"k", raw, [])], spec)
    assert not decoded.bad and decoded.good[0][1].payload.count == "3"
    # Without the old model the record is invalid for version 2 and set aside with the reason.
    (letter,) = decode_batch([Record("t", 0, 0, b"k", raw, [])], spec_of(ThingV2)).bad
    assert letter.reason == "invalid" and "payload.count" in letter.error
    # A consumer that knows only version 1 says a version 2 record is too new.
    newer = encode(wrap(ThingV2(**{**envelope.payload.model_dump()}), key="k", source="t"))
    with pytest.raises(ValueError, match="newer than this consumer understands"):
        decode(newer, Thing)


# -- unions: an alternative is matched with its counterpart, not with the first one -----------


class Play(BaseModel):
    type: Literal["play"] = "play"


class Seek(BaseModel):
    type: Literal["seek"] = "seek"
    position: float


class Stop(BaseModel):
    type: Literal["stop"] = "stop"


class Command(Payload):
    event_type: ClassVar[str] = "test.command"
    command: Annotated[Play | Seek, Field(discriminator="type")]


class CommandMore(Payload):
    event_type: ClassVar[str] = "test.command"
    command: Annotated[Play | Seek | Stop, Field(discriminator="type")]


class CommandLess(Payload):
    event_type: ClassVar[str] = "test.command"
    command: Annotated[Play, Field(discriminator="type")]


def test_union_alternatives_are_compared_with_their_counterparts(tmp_path: Path) -> None:
    def spec(model: type[Payload]) -> TopicSpec:
        return TopicSpec(name="test.command", payload=model, key="user_id")

    release(tmp_path, [spec(Command)])
    assert not breaking(tmp_path, spec(CommandMore))
    (problem,) = breaking(tmp_path, spec(CommandLess))
    assert "command" in problem.message
