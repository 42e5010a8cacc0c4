"""Personalization (SONA) events: ratings, dismissals, recommendation requests and answers,
and the notice that a user's adapter was retrained. Pure data: the rules live in agents/sona.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.accounts import ProfileLimits
from schemas.content import region_code
from schemas.envelope import Payload

# One device vocabulary for the whole system: the sync slice owns it.
from schemas.sync import DeviceType

# docs/RULES.md: at most 20 recommendations per answer.
MAX_RECOMMENDATIONS = 20

UserId = Annotated[str, Field(min_length=1, max_length=128)]
Mood = Annotated[str, Field(min_length=1, max_length=64)]


class TimeBucket(StrEnum):
    """docs/RULES.md's buckets of the local hour: night 0-6, morning 6-12, afternoon 12-18,
    evening 18-24."""

    night = "night"
    morning = "morning"
    afternoon = "afternoon"
    evening = "evening"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ContentRated(Payload):
    """A user rated a title 1-5 stars; keyed by user_id."""

    event_type: ClassVar[str] = "sona.content.rated"

    user_id: UserId
    content_id: uuid.UUID
    rating: int = Field(ge=1, le=5)
    # Aware only: the rules compare and age timestamps, and a naive one raises TypeError there.
    timestamp: AwareDatetime


class ContentDismissed(Payload):
    """A user said "not interested" to a title; it pulls their preference vector away from it."""

    event_type: ClassVar[str] = "sona.content.dismissed"

    user_id: UserId
    content_id: uuid.UUID
    timestamp: AwareDatetime


class RecommendationsRequested(Payload):
    """The gateway asks for a user's recommendations; the answer (a RecommendationsResponse)
    goes to the Redis pub/sub channel named in `reply_channel`.

    `at` is the client's clock with its UTC offset: the offset gives the local hour, hence the
    time bucket, so it is kept as sent rather than converted to UTC.
    """

    event_type: ClassVar[str] = "sona.recommendations.requested"

    user_id: UserId
    device_type: DeviceType | None = None
    mood: Mood | None = None
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    at: AwareDatetime
    limit: int = Field(default=MAX_RECOMMENDATIONS, ge=1, le=MAX_RECOMMENDATIONS)
    reply_channel: str = Field(min_length=1, max_length=300)
    # The acting profile's parental limits (docs/AUTH.md): set by the gateway, never by the
    # client; no title beyond them is recommended. None: no limits.
    limits: ProfileLimits | None = None

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        # The rule offers are stored by: 'uk' asks for the titles offered in GB.
        return region_code(value) if isinstance(value, str) else value

    @field_validator("mood", mode="before")
    @classmethod
    def _normal_mood(cls, value: object) -> object:
        # "Scared " and "scared" are one mood; the reason text shows the normalized word.
        return value.strip().lower() if isinstance(value, str) else value


class Recommendation(_Data):
    canonical_id: uuid.UUID
    title: str = Field(min_length=1, max_length=500)
    score: float = Field(allow_inf_nan=False)
    reasons: list[str] = Field(default_factory=list, max_length=16)


class RecommendationContext(_Data):
    """The context the answer was computed for, echoed so a client can explain it."""

    time_bucket: TimeBucket
    device_type: DeviceType | None = None
    mood: Mood | None = None
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")


class RecommendationsResponse(Payload):
    event_type: ClassVar[str] = "sona.recommendations.response"

    user_id: UserId
    recommendations: list[Recommendation] = Field(max_length=MAX_RECOMMENDATIONS)
    generated_at: AwareDatetime
    # None: no trained adapter yet (cold start or fewer than 10 usable events).
    adapter_version: int | None = Field(default=None, ge=1)
    context: RecommendationContext


class AdapterTrained(Payload):
    """A user's adapter has a new stored version: every worker drops its in-process copy."""

    event_type: ClassVar[str] = "sona.adapter.trained"

    user_id: UserId
    adapter_name: Literal["default"] = "default"
    # Not `version`: Payload.version is the schema version every payload carries.
    adapter_version: int = Field(ge=1)
    training_iterations: int = Field(ge=0)
