"""Account events: a profile of an account created, changed or removed, and an API key issued
or revoked by an admin. Pure data: the rules live in agreements/parental_controls.py and
agents/accounts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.content import MaturityRating
from schemas.envelope import Payload

UserId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|-]+$")]
# A profile id is chosen by the client (PUT creates or replaces): short, URL-safe.
ProfileId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
GenreId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
MAX_BLOCKED_GENRES = 18


class ProfileKind(StrEnum):
    adult = "adult"
    kids = "kids"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ProfileLimits(_Data):
    """What a profile may be shown: a maximum maturity rating (unrated titles are not shown
    under one) and genres never shown. An adult profile may have limits too."""

    content_rating_limit: MaturityRating | None = None
    blocked_genres: list[GenreId] = Field(default_factory=list, max_length=MAX_BLOCKED_GENRES)

    @field_validator("content_rating_limit", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) and value.isascii() else value

    @field_validator("blocked_genres")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        # One spelling of one set: the cache keys made of limits must not depend on order.
        return sorted(set(value))

    @property
    def restricts(self) -> bool:
        return self.content_rating_limit is not None or bool(self.blocked_genres)


class ProfileChanged(Payload):
    """A profile of an account was created or replaced (`removed` false), or removed; keyed by
    user_id so one account's changes apply in order."""

    event_type: ClassVar[str] = "accounts.profile.changed"

    user_id: UserId
    profile_id: ProfileId
    removed: bool = False
    name: str = Field(default="", max_length=100)
    kind: ProfileKind = ProfileKind.adult
    limits: ProfileLimits = Field(default_factory=ProfileLimits)
    # Who changed it (the token's subject: the account, or an admin acting for it).
    changed_by: UserId
    changed_at: AwareDatetime

    @model_validator(mode="after")
    def _kids_are_limited(self) -> ProfileChanged:
        # A kids profile without a maturity limit would be an adult one by another name.
        if (
            not self.removed
            and self.kind is ProfileKind.kids
            and (self.limits.content_rating_limit is None)
        ):
            raise ValueError("limits.content_rating_limit: a kids profile needs a maturity limit")
        return self


class ApiKeyChanged(Payload):
    """An admin issued (`action` issued: name, hash, scopes, tier set) or revoked an API key;
    keyed by key_id. The key's secret never travels: only its SHA-256."""

    event_type: ClassVar[str] = "accounts.api_key.changed"

    action: Literal["issued", "revoked"]
    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    name: str = Field(default="", max_length=200)
    hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    scopes: list[str] = Field(default_factory=list, max_length=32)
    tier: Literal["free", "pro", "enterprise"] = "free"
    changed_by: UserId
    changed_at: AwareDatetime

    @model_validator(mode="after")
    def _issued_is_whole(self) -> ApiKeyChanged:
        if self.action == "issued" and (self.hash is None or not self.name):
            raise ValueError("an issued key needs its name and hash")
        return self


class Profile(_Data):
    """A profile as the read model and `GET .../profiles` show it."""

    profile_id: ProfileId
    name: str = Field(default="", max_length=100)
    kind: ProfileKind
    limits: ProfileLimits = Field(default_factory=ProfileLimits)


class ProfilesResponse(_Data):
    user_id: UserId
    profiles: list[Profile]
