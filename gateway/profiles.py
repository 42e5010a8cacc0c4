"""Which profile of the account a request acts as, and its parental limits (docs/AUTH.md,
"Profiles and parental controls").

The profile comes from the token's `profile` claim when it has one (a token bound to a kids
profile cannot shed it: X-Profile-ID naming another is refused), else from the X-Profile-ID
header; without either the account acts as itself, without limits. A named profile is looked
up in the profiles read model the accounts agents render in Redis; one not found there is
refused (403 `unknown_profile`), never taken as "no limits".

The limits found travel in the request events (search filters, recommendation requests), so
the agents apply them; the gateway itself applies them only to what it answers from Redis
without an agent: a title read directly, and suggestions.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.requests import HTTPConnection

from agreements.profiles_read_model import read_profile
from gateway.auth.dependencies import resolve_principal
from gateway.errors import error_response
from schemas.accounts import Profile, ProfileKind, ProfileLimits

PROFILE_HEADER = "X-Profile-ID"
_ACTING_KEY = "mgw.profile"

HEADER_PARAMETER = {
    "name": PROFILE_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "description": "the account's profile this request acts as (its parental limits apply); "
    "a token with a `profile` claim is bound to that profile already",
}
RESTRICTED_RESPONSE = {
    403: {
        "description": "`restricted`: the title is above the acting profile's maturity limit "
        "(or unrated) or of a genre it blocks; or `unknown_profile`: the profile named is not "
        "the account's"
    }
}
UNKNOWN_PROFILE_RESPONSE = {
    403: {"description": "`unknown_profile`: the profile named is not the account's"}
}


def profile_filtered(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses` whose 403 also names `unknown_profile`: a read whose answer is filtered by
    the acting profile's parental limits, where a profile named must be the account's."""
    unknown = UNKNOWN_PROFILE_RESPONSE[403]["description"]
    described = f"{responses[403]['description']}; or {unknown}"
    return {**responses, 403: {"description": described}}


class ProfileRefused(Exception):
    """A request refused for its profile: 403 with a problem code and the field it names."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def restricted(reason: str) -> ProfileRefused:
    return ProfileRefused("restricted", f"restricted for this profile: {reason}")


def device_profile(acting: Profile | None, bound: bool, asked: str | None) -> str | None:
    """The profile a TV approved by this request is bound to (docs/AUTH.md, "TV sign-in"):
    the one asked for, else the approver's acting profile (None: unbound, the account). A
    kids profile, or a token bound to a profile, approves only for that same profile: the TV
    never gets more than its approver has. Whether an asked profile exists is the caller's
    look-up, made only past this rule (a kid learns nothing of the account's other profiles)."""
    if asked is None:
        return None if acting is None else acting.profile_id
    if acting is not None and asked != acting.profile_id:
        if acting.kind is ProfileKind.kids or bound:
            raise ProfileRefused(
                "restricted",
                f"acting as profile {acting.profile_id!r}, a TV can be approved for it only",
                "body.profile_id",
            )
    return asked


async def acting_profile(request: Request) -> Profile | None:
    """The profile this request acts as; None: the account itself (or an anonymous caller)."""
    scope = request.scope
    if _ACTING_KEY in scope:
        return scope[_ACTING_KEY]  # type: ignore[no-any-return]
    named = request.headers.get(PROFILE_HEADER)
    principal = await resolve_principal(request)
    field = f"header.{PROFILE_HEADER}"
    profile: Profile | None = None
    if principal is None or principal.kind != "user":
        if named is not None:
            raise ProfileRefused(
                "unknown_profile", "profiles belong to a signed-in user's account", field
            )
    else:
        if principal.profile is not None:
            if named is not None and named != principal.profile:
                raise ProfileRefused(
                    "unknown_profile",
                    "the token is bound to another profile of the account",
                    field,
                )
            named, field = principal.profile, "token.profile"
        if named is not None:
            settings = request.app.state.settings
            profile = await read_profile(
                request.app.state.redis, settings.redis.key_prefix, principal.subject, named
            )
            if profile is None:
                raise ProfileRefused("unknown_profile", "no such profile in the account", field)
    scope[_ACTING_KEY] = profile
    return profile


async def limits_of(
    request: HTTPConnection, user_id: str, profile_id: str | None, field: str
) -> ProfileLimits | None:
    """The limits of a profile named earlier (a stream ticket's claim), read once; None: no
    profile, or one without limits. A profile gone since is refused, never taken as none."""
    if profile_id is None:
        return None
    settings = request.app.state.settings
    profile = await read_profile(
        request.app.state.redis, settings.redis.key_prefix, user_id, profile_id
    )
    if profile is None:
        raise ProfileRefused("unknown_profile", "no such profile in the account", field)
    return profile.limits if profile.limits.restricts else None


async def acting_limits(request: Request) -> ProfileLimits | None:
    """The acting profile's limits when it has any; None: nothing is restricted."""
    profile = await acting_profile(request)
    if profile is None or not profile.limits.restricts:
        return None
    return profile.limits


def install_profile_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProfileRefused)
    async def _refused(request: Request, exc: ProfileRefused) -> Response:
        fields = [{"field": exc.field, "reason": exc.message}] if exc.field else None
        return error_response(403, exc.code, exc.message, request, fields=fields)
