"""The pure rules of tokens bound to a profile: which profile an approved TV is bound to
(gateway/profiles.py `device_profile`) and the access token's `profile` claim
(agents/auth/grants.py `access_claims`), read back as the gateway reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.auth.grants import DEFAULT_USER_SCOPES, PRODUCER_SCOPES, access_claims
from agreements.scopes import SCOPES
from gateway.auth.tokens import parse_profile
from gateway.profiles import ProfileRefused, device_profile
from schemas.accounts import Profile, ProfileKind, ProfileLimits
from tests.auth.test_tokens import auth

KID = Profile(
    profile_id="kid",
    kind=ProfileKind.kids,
    limits=ProfileLimits(content_rating_limit="PG", blocked_genres=["horror"]),
)
MOM = Profile(profile_id="mom", kind=ProfileKind.adult)


def claims(profile: str | None) -> dict[str, object]:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    return access_claims(
        auth(), user_id="parent", session_id="s1", scope="content:read", roles=[],
        tier="free", now=now, profile=profile,
    )  # fmt: skip


def test_a_bound_token_carries_the_profile_the_gateway_reads() -> None:
    assert parse_profile(claims("kid")) == "kid"
    unbound = claims(None)
    assert "profile" not in unbound and parse_profile(unbound) is None


@pytest.mark.parametrize(
    ("acting", "bound", "asked", "chosen"),
    [
        (None, False, None, None),  # the account itself: the TV is unbound too
        (None, False, "kid", "kid"),  # the parent binds the TV to the kids profile
        (MOM, False, "kid", "kid"),  # an adult profile may bind it to another profile
        (MOM, False, None, "mom"),  # inherits the approver's acting profile
        (KID, False, None, "kid"),  # a kid's approval never yields an unbound TV
        (KID, True, "kid", "kid"),  # its own profile, named
        (MOM, True, "mom", "mom"),
    ],
)
def test_the_profile_a_tv_is_bound_to(
    acting: Profile | None, bound: bool, asked: str | None, chosen: str | None
) -> None:
    assert device_profile(acting, bound, asked) == chosen


@pytest.mark.parametrize(
    ("acting", "bound", "asked"),
    [
        (KID, False, "mom"),  # a kids profile (by X-Profile-ID) cannot approve for an adult
        (KID, True, "mom"),  # nor a token bound to it
        (KID, False, "other-kid"),
        (MOM, True, "dad"),  # a token bound to a profile cannot switch it for the TV
    ],
)
def test_a_restricted_approver_approves_only_for_its_own_profile(
    acting: Profile, bound: bool, asked: str
) -> None:
    with pytest.raises(ProfileRefused) as refused:
        device_profile(acting, bound, asked)
    assert refused.value.code == "restricted"
    assert refused.value.field == "body.profile_id"


def test_a_dev_user_without_a_scope_asked_gets_every_user_scope_and_no_producer_scope() -> None:
    # The README's dev user creates a kids profile, then approves a TV for it.
    assert {"profiles:read", "profiles:write", "devices:command"} <= DEFAULT_USER_SCOPES
    assert not {"content:write", "ingest:write"} & DEFAULT_USER_SCOPES
    assert DEFAULT_USER_SCOPES | PRODUCER_SCOPES == set(SCOPES)
