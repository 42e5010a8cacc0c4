"""RFC 9457 problem details: the one shape of every 4xx/5xx answer, and the table of its types.

Every error is `application/problem+json`: `type` (a URI reference to this gateway's page
about the code, `/problems/{code}`), `title` (the code's fixed summary), `status`, `detail`
(what went wrong with this request), `instance` (the request's path), and three extension
members: `error` (the short code clients matched on before problem details, kept so they keep
working), `fields` (for bad input: each `{field, reason}`) and `request_id` (the X-Request-ID
the logs carry). The table below is the only place a code gets its title and description:
the `/problems` pages, the OpenAPI document and docs/HTTP_CONTRACT.md are made from it.

`type` is relative: it resolves against the origin the client called (RFC 9457 allows a URI
reference), so it stays right behind any proxy or host name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    title: str
    description: str


TYPES: dict[str, ProblemType] = {
    "validation_failed": ProblemType(
        "Request failed validation",
        "A parameter or the body does not match the operation's schema, or breaks a rule the "
        "schema cannot state; `fields` names each one with its reason. Fix the request; "
        "retrying it unchanged fails again.",
    ),
    "bad_request": ProblemType(
        "Malformed HTTP request",
        "The request is not valid HTTP/1.1 (the parser refused it); the connection is closed.",
    ),
    "invalid_request": ProblemType(
        "Credential cannot be interpreted",
        "Authorization and X-API-Key were both sent (RFC 6750 invalid_request): send one.",
    ),
    "unauthorized": ProblemType(
        "Credential missing or not valid",
        "The route needs a credential, or the one sent is expired, revoked or malformed; "
        "WWW-Authenticate has the details (RFC 6750).",
    ),
    "forbidden": ProblemType(
        "Not allowed for this caller",
        "The credential is valid but lacks a scope the route needs, or the resource belongs "
        "to another user.",
    ),
    "unknown_device": ProblemType(
        "Device not registered to this user",
        "The request names a device (X-Device-ID, or the device in the path) that is not "
        "registered to this user: never registered, or removed. Register it first with "
        "PUT /api/v1/users/{user_id}/devices/{device_id}, then retry; `fields` names where the "
        "device id came from.",
    ),
    "not_found": ProblemType(
        "Not found",
        "No route serves this path, or the resource it names does not exist (yet: a write "
        "accepted with 202 becomes readable once its agent has applied it).",
    ),
    "method_not_allowed": ProblemType(
        "Method not allowed",
        "The path exists but not with this method; Allow lists the methods it serves.",
    ),
    "request_timeout": ProblemType(
        "Request not received in time",
        "The headers or the body arrived too slowly (GATEWAY_HEADER_TIMEOUT_S, "
        "GATEWAY_BODY_TIMEOUT_S); the connection is closed.",
    ),
    "idempotency_in_flight": ProblemType(
        "Same Idempotency-Key still in flight",
        "A request with this Idempotency-Key is still being processed; retry after the delay "
        "in Retry-After to get its answer.",
    ),
    "payload_too_large": ProblemType(
        "Request too large",
        "The body exceeds GATEWAY_MAX_BODY_BYTES, or a batch holds more items than one request "
        "may carry; send smaller requests.",
    ),
    "unsupported_media_type": ProblemType(
        "Unsupported media type",
        "The body must be JSON, sent with Content-Type: application/json.",
    ),
    "idempotency_key_reused": ProblemType(
        "Idempotency-Key reused for another request",
        "This Idempotency-Key was already used by this caller for a different request (another "
        "method, path or body); use a new key for a new operation.",
    ),
    "rate_limited": ProblemType(
        "Rate limit exceeded",
        "The caller's tier allows no more requests in this window; X-RateLimit-Reset and "
        "Retry-After say when to come back.",
    ),
    "too_many_tokens": ProblemType(
        "Too many realtime tokens",
        "This device already holds PUBNUB_TOKENS_PER_DEVICE live realtime tokens; reuse the "
        "newest until it nears its expires_at, then ask again.",
    ),
    "invalid_user_code": ProblemType(
        "No device waiting with this code",
        "No TV is waiting for approval with this user code (RFC 8628): it expired, was "
        "already approved or denied, or was mistyped. Ask the TV for a new code.",
    ),
    "device_limit_reached": ProblemType(
        "Too many devices",
        "The user already has SYNC_MAX_DEVICES_PER_USER registered devices; remove one before "
        "registering another (re-registering a device already registered is always accepted).",
    ),
    "watchlist_full": ProblemType(
        "Watchlist full",
        "The watchlist already holds SYNC_MAX_WATCHLIST_SIZE titles; remove one before adding "
        "another (adding a title already on the list is always accepted).",
    ),
    "too_many_auth_failures": ProblemType(
        "Too many failed authentications",
        "This client address sent more failing credentials in the last minute than "
        "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE allows; requests carrying a credential are refused "
        "unread until Retry-After.",
    ),
    "profile_limit_reached": ProblemType(
        "Too many profiles",
        "The account already holds AUTH_MAX_PROFILES profiles; remove one before creating "
        "another (replacing a profile that exists is always accepted).",
    ),
    "restricted": ProblemType(
        "Restricted for this profile",
        "The title is above the acting profile's maximum maturity rating (or unrated), or has "
        "a genre the profile blocks; `detail` gives the reason. Parental controls: only a "
        "request without that profile (an adult's) may read it.",
    ),
    "unknown_profile": ProblemType(
        "Unknown profile",
        "The request names a profile (the token's `profile` claim or X-Profile-ID) that is not "
        "one of the account's, or one the token is not bound to; `fields` says where it came "
        "from. List the account's profiles with GET /api/v1/users/{user_id}/profiles.",
    ),
    "headers_too_large": ProblemType(
        "Request headers too large",
        "The headers exceed GATEWAY_MAX_HEADER_BYTES; the connection is closed.",
    ),
    "internal_error": ProblemType(
        "Internal error",
        "An unexpected failure in the gateway. The body holds no details; the gateway's log "
        "has them under the request id. Whether a write took effect is unknown: retry with "
        "the same Idempotency-Key.",
    ),
    "agent_failed": ProblemType(
        "Agent could not answer",
        "The agent that answers this read failed on this request for good; retrying does not help.",
    ),
    "broker_unavailable": ProblemType(
        "Event not accepted",
        "The message broker cannot be reached, or this gateway is shutting down; nothing was "
        "written, so a retry after Retry-After is safe.",
    ),
    "outcome_unknown": ProblemType(
        "Outcome unknown",
        "The broker did not confirm the event in time: it may or may not have been accepted. "
        "Retry with the same Idempotency-Key: it is applied once.",
    ),
    "redis_unavailable": ProblemType(
        "Redis unavailable",
        "Redis (read models, users' clocks, idempotency records) cannot be reached; retry "
        "after Retry-After.",
    ),
    "cache_unavailable": ProblemType(
        "Cache unavailable", "The cache this read needs cannot be reached; retry shortly."
    ),
    "lookup_timeout": ProblemType(
        "Read model lookup unanswered",
        "No agent answered the lookup in time; retry shortly.",
    ),
    "agent_unavailable": ProblemType(
        "Agent unavailable",
        "The agent that answers this read cannot answer now; retry after Retry-After.",
    ),
    "dependency_unavailable": ProblemType(
        "Dependency failing",
        "A service the route calls is failing and calls to it are paused (circuit open); "
        "retry after Retry-After.",
    ),
    "auth_unavailable": ProblemType(
        "Credentials cannot be checked",
        "API keys cannot be checked because their store is unreachable; retry after Retry-After.",
    ),
    "invalid_ticket": ProblemType(
        "Stream ticket not valid",
        "The stream ticket is malformed, unknown, already used, expired, or for another user "
        "or device (tickets are single use and live 60 s); ask for a new one with POST "
        ".../stream/ticket.",
    ),
    "too_many_streams": ProblemType(
        "Too many open streams for this user",
        "The user holds REALTIME_STREAMS_PER_USER open streams and sockets across the "
        "gateways; close one (or wait for a dropped one to lapse) and retry after Retry-After.",
    ),
    "stream_capacity": ProblemType(
        "This gateway holds all the streams it may",
        "This gateway process holds REALTIME_STREAMS_PER_PROCESS open streams and sockets; "
        "retry after Retry-After, or through another instance.",
    ),
    "too_many_connections": ProblemType(
        "Too many connections",
        "This gateway process holds its limit of open connections (GATEWAY_MAX_CONNECTIONS); "
        "retry in a second, or through another instance.",
    ),
    "service_unavailable": ProblemType(
        "Service unavailable",
        "A part this route needs is unavailable; retry after Retry-After.",
    ),
    "search_timeout": ProblemType(
        "Search unanswered", "No discovery agent answered in time; retry shortly."
    ),
    "recommendations_timeout": ProblemType(
        "Recommendations unanswered", "No recommendation agent answered in time; retry shortly."
    ),
    "http_error": ProblemType(
        "HTTP error", "An error without a more specific code; `status` and `detail` say which."
    ),
}


def type_uri(code: str) -> str:
    return TYPE_PREFIX + code


def title_of(code: str) -> str:
    known = TYPES.get(code)
    return known.title if known is not None else code.replace("_", " ").capitalize()


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    fields: list[dict[str, str]] | None = None,
    request_id: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`extensions`: further members a route adds (never one of the standard names)."""
    body: dict[str, Any] = {
        "type": type_uri(code),
        "title": title_of(code),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body["error"] = code
    if fields:
        body["fields"] = fields
    if request_id:
        body["request_id"] = request_id
    if extensions:
        body.update({k: v for k, v in extensions.items() if k not in body})
    return body


def problem_bytes(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    fields: list[dict[str, str]] | None = None,
    request_id: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> bytes:
    return orjson.dumps(problem(status, code, detail, instance, fields, request_id, extensions))


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of a problem body (the OpenAPI document's `Problem` component)."""
    return {
        "title": "Problem",
        "type": "object",
        "description": "RFC 9457 problem details; `error`, `fields` and `request_id` are "
        "extension members. Every code and its meaning: GET /problems.",
        "required": ["type", "title", "status", "detail", "error"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "description": "/problems/{error}: this code's documentation",
            },
            "title": {"type": "string", "description": "the code's fixed summary"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "what went wrong with this request"},
            "instance": {"type": "string", "description": "the request's path"},
            "error": {
                "type": "string",
                "enum": sorted(TYPES),
                "description": "the short code (the last segment of `type`)",
            },
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "reason"],
                    "properties": {
                        "field": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
            "request_id": {"type": "string", "description": "X-Request-ID of this request"},
        },
    }
