"""The built-in token service's HTTP face (docs/AUTH.md, "The token service"):
`POST /api/v1/auth/token` (RFC 6749, form-encoded), `POST /api/v1/auth/revoke` (RFC 7009),
`/.well-known/jwks.json` and `/.well-known/openid-configuration`.

The gateway decides nothing here: it reads the form, hashes the secrets in it, publishes a
typed request and relays the auth agents' answer (gateway/lookup.py's request/reply). The keys
it serves are the ones the agents published in Redis.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from agreements.auth_state import jwks_key
from agreements.device_codes import sha256_hex
from gateway.auth.principal import SCOPES
from gateway.auth.tokens import InvalidToken
from gateway.lookup import LookupTimeout, new_reply_channel, request_reply
from schemas.auth import GrantType, RevocationRequested, TokenRequested
from schemas.envelope import Payload
from topics.registry import AUTH_REVOCATIONS, AUTH_TOKEN_REQUESTS, TopicSpec

router = APIRouter(tags=["auth"])

FORM = "application/x-www-form-urlencoded"
# RFC 6749 section 5.1: token responses (and their errors) are never stored.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 8192

OAUTH_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
            }
        }
    }
}
# What every grant answers (agents/auth/grants.py `token_response`); documented here because
# the route passes the auth agent's answer through, and FastAPI then documented it as {}.
TOKENS: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "refresh_token", "scope"],
                "properties": {
                    "access_token": {"type": "string", "description": "a signed JWT"},
                    "token_type": {"type": "string", "const": "Bearer"},
                    "expires_in": {
                        "type": "integer",
                        "description": "the access token's life in seconds",
                    },
                    "refresh_token": {
                        "type": "string",
                        "description": "single use: each refresh answers a new one",
                    },
                    "scope": {"type": "string", "description": "the scopes granted, spaced"},
                },
            }
        }
    }
}
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "tokens (RFC 6749 section 5.1): access_token, refresh_token, ...",
        **TOKENS,
    },
    400: {
        "description": "an RFC 6749 section 5.2 error: invalid_request (a field missing, "
        "repeated, or the body not form-encoded; error_description names the field), "
        "invalid_grant (refresh token unknown, expired, revoked or reused), "
        "unsupported_grant_type, invalid_scope; RFC 8628: authorization_pending, "
        "slow_down, expired_token, access_denied",
        **OAUTH_ERROR,
    },
    503: {
        "description": "temporarily_unavailable: the auth agents did not answer in time",
        **OAUTH_ERROR,
    },
}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=NO_STORE)


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields; a field sent twice, or a body that is not a form, is invalid_request
    (RFC 6749 section 3.2)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a readable form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise OAuthError("invalid_request", f"field {name}: sent more than once")
        fields[name] = value
    return fields


def required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise OAuthError("invalid_request", f"field {name}: required")
    return value


async def ask_agents(
    request: Request, topic: TopicSpec, payload: Payload, key: str
) -> dict[str, Any]:
    """Publish `payload` and wait for the auth agents' answer (`{"status", "body"}`)."""
    try:
        raw = await request_reply(
            request.app.state.redis,
            request.app.state.publisher,
            topic,
            payload,
            key=key,
            timeout_s=request.app.state.settings.auth.token_timeout_s,
            unanswered=LookupTimeout("no auth agent answered"),
            breaker="auth",
        )
    except LookupTimeout:
        raise OAuthError(
            "temporarily_unavailable", "the token service did not answer in time; retry", 503
        ) from None
    return json.loads(raw)  # type: ignore[no-any-return]


async def ask(request: Request, topic: TopicSpec, payload: Payload, key: str) -> JSONResponse:
    """The agents' answer, relayed as it is."""
    answer = await ask_agents(request, topic, payload, key)
    return JSONResponse(answer["body"], status_code=int(answer["status"]), headers=NO_STORE)


def _reply_channel(request: Request) -> str:
    return new_reply_channel(request.app.state.settings.redis.key_prefix)


@router.post(
    "/api/v1/auth/token",
    summary="Tokens for a grant: refresh_token, device_code (RFC 8628), or the dev user",
    responses=TOKEN_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": [g.value for g in GrantType]},
                            "refresh_token": {"type": "string"},
                            "device_code": {"type": "string"},
                            "username": {"type": "string", "description": "dev grant only"},
                            "scope": {"type": "string"},
                            "profile": {
                                "type": "string",
                                "description": "dev grant only: bind the tokens to this "
                                "profile of the account (their `profile` claim)",
                            },
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request) -> Response:
    try:
        return await _token(request)
    except OAuthError as exc:
        return exc.response()


async def _token(request: Request) -> Response:
    fields = await read_form(request)
    grant = required(fields, "grant_type")
    try:
        grant_type = GrantType(grant)
    except ValueError:
        raise OAuthError(
            "unsupported_grant_type", "grant_type: not one this server supports"
        ) from None
    values: dict[str, Any] = {"grant_type": grant_type, "reply_channel": _reply_channel(request)}
    if grant_type is GrantType.refresh_token:
        values["refresh_token_hash"] = sha256_hex(required(fields, "refresh_token"))
        key = values["refresh_token_hash"]
    elif grant_type is GrantType.device_code:
        values["device_code_hash"] = sha256_hex(required(fields, "device_code"))
        key = values["device_code_hash"]
    else:
        if not request.app.state.settings.auth.dev_mode:
            raise OAuthError("unsupported_grant_type", "the dev grant needs AUTH_DEV_MODE=true")
        values["username"] = key = required(fields, "username")
        values["scope"] = fields.get("scope") or None
        values["profile"] = fields.get("profile") or None
    try:
        payload = TokenRequested.model_validate(values)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise OAuthError("invalid_request", f"field {field}: {exc.errors()[0]['msg']}") from None
    return await ask(request, AUTH_TOKEN_REQUESTS, payload, key)


@router.post(
    "/api/v1/auth/revoke",
    summary="Sign out (RFC 7009): revoke the session of a refresh or access token",
    # RFC 7009 2.2: the answer is a bare 200, no body.
    response_class=Response,
    responses={
        200: {
            "description": "revoked, or the token was not one of ours (RFC 7009 2.2). "
            "This is the sign-out (there is no separate logout): a refresh token revokes its "
            "session, every refresh token of its family with it; an access token (ours, with "
            "a sid) revokes its session the same way and denies its jti, so the access token "
            "is refused by every gateway within AUTH_REVOCATION_POLL_S"
        },
        400: {"description": "invalid_request: field token missing", **OAUTH_ERROR},
        503: {
            "description": "temporarily_unavailable: the auth agents did not answer",
            **OAUTH_ERROR,
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["token"],
                        "properties": {
                            "token": {"type": "string"},
                            "token_type_hint": {
                                "type": "string",
                                "enum": ["access_token", "refresh_token"],
                            },
                        },
                    }
                }
            },
        }
    },
)
async def revoke(request: Request) -> Response:
    try:
        fields = await read_form(request)
        presented = required(fields, "token")
        values: dict[str, Any] = {"reply_channel": _reply_channel(request)}
        verifier = request.app.state.authenticator.verifier
        try:
            # One of our access tokens (or a provider's): its session and id are denied.
            await verifier.verify_async(presented)
            ids = verifier.ids_of(presented)
        except InvalidToken:
            ids = None
        if ids is not None and (ids.sid or ids.jti):
            values |= {"session_id": ids.sid, "token_id": ids.jti,
                       "token_expires_at": ids.expires_at}  # fmt: skip
            key = ids.sid or ids.jti or ""
        else:
            values["refresh_token_hash"] = key = sha256_hex(presented)
        answer = await ask(request, AUTH_REVOCATIONS, RevocationRequested(**values), key)
    except OAuthError as exc:
        return exc.response()
    return Response(status_code=answer.status_code, headers=NO_STORE)


def _json(schema: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


# The two documents below are built by hand (JSONResponse), so FastAPI documented them as {}.
JWKS_RESPONSES = _json(
    {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "description": "the keys a token may be signed with (RFC 7517), by kid",
                "items": {
                    # Open: a JWK's members depend on its kty (OKP: crv and x).
                    "type": "object",
                    "required": ["kty", "kid"],
                    "properties": {
                        "kty": {"type": "string"},
                        "kid": {"type": "string"},
                        "alg": {"type": "string"},
                        "use": {"type": "string", "const": "sig"},
                        "crv": {"type": "string"},
                        "x": {"type": "string"},
                    },
                },
            }
        },
    },
    "a JSON Web Key Set (RFC 7517 section 5); cache for at most 60 s",
)
_URL = {"type": "string"}
_NAMES = {"type": "array", "items": {"type": "string"}}
DISCOVERY_RESPONSES = _json(
    {
        "type": "object",
        "required": [
            "issuer",
            "jwks_uri",
            "token_endpoint",
            "revocation_endpoint",
            "device_authorization_endpoint",
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
            "scopes_supported",
        ],
        "properties": {
            "issuer": {"type": "string"},
            "jwks_uri": _URL,
            "token_endpoint": _URL,
            "revocation_endpoint": _URL,
            "device_authorization_endpoint": _URL,
            "grant_types_supported": _NAMES,
            "token_endpoint_auth_methods_supported": _NAMES,
            "response_types_supported": _NAMES,
            "subject_types_supported": _NAMES,
            "id_token_signing_alg_values_supported": _NAMES,
            "scopes_supported": _NAMES,
        },
    },
    "OpenID Provider Metadata (OpenID Connect Discovery 1.0 section 3)",
)


@router.get(
    "/.well-known/jwks.json",
    summary="The token service's public signing keys",
    responses=JWKS_RESPONSES,
)
async def jwks(request: Request) -> Response:
    prefix = request.app.state.settings.redis.key_prefix
    held = await request.app.state.redis.hgetall(jwks_key(prefix))
    keys = []
    for raw in held.values():
        jwk = json.loads(raw)
        jwk.pop("exp_after", None)  # ours, not a JWK member
        keys.append(jwk)
    keys.sort(key=lambda k: str(k.get("kid")))
    # Short: after a rotation, verifiers elsewhere must see the new key soon.
    return JSONResponse({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})


@router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Connect discovery",
    responses=DISCOVERY_RESPONSES,
)
async def openid_configuration(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    auth = request.app.state.settings.auth
    document = {
        "issuer": auth.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/api/v1/auth/token",
        "revocation_endpoint": f"{base}/api/v1/auth/revoke",
        "device_authorization_endpoint": f"{base}/api/v1/auth/device/code",
        "grant_types_supported": [
            g.value for g in GrantType if g is not GrantType.dev or auth.dev_mode
        ],
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": sorted(SCOPES),
    }
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})
