"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for tests/edge/test_openapi_fuzz.py.

The OpenAPI document states each field's own bounds; a few rules relate two fields, or a field
and the server's clock, and JSON Schema cannot state those. The operations that apply one
name it in their 422 description (gateway/routes). A schema-valid request refused by exactly
such a rule is the documented answer, not a finding; every other failure stays one.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

PROFILE = "PUT /api/v1/users/{user_id}/profiles/{profile_id}"
COMMANDS = "POST /api/v1/users/{user_id}/devices/{device_id}/commands"
# (operation, the field the 422 names (a regular expression), words of its reason)
DOCUMENTED_RULES: tuple[tuple[str, str, str], ...] = (
    ("GET /api/v1/search", r"query\.rating_min/rating_max", "rating_range"),
    ("GET /api/v1/search", r"query\.year_from/year_to", "year_range"),
    ("PUT /api/v1/users/{user_id}/progress/{content_id}", r"\(body\)", "past the end"),
    (COMMANDS, r"path\.device_id", "does not send commands to itself"),
    (COMMANDS, r"command\.level", "is outside 0-1"),
    (COMMANDS, r"command\.(position_seconds|start_position)", "is negative"),
    (COMMANDS, r"command\.target_device_id", "is the device receiving the command"),
    ("POST /api/v1/content", r"availability\.\d+", "available_until is before available_from"),
    ("*", "timestamp", "ahead of the server's clock"),
    ("*", "given_at", "ahead of the server's clock"),
    ("*", r"time_zone|query\.tz", "unknown time zone"),
    ("GET /api/v1/search", r"query\.blocked_genres", "genres already"),
    (PROFILE, r"limits\.content_rating_limit", "a kids profile needs"),
    (PROFILE, r"limits\.blocked_genres", "is not a canonical genre id"),
)
# A catalog batch is validated item by item (one bad item does not sink the others): a batch
# of objects the document allows, none of them a valid item, is answered 422 with the reasons.
BATCH = "POST /api/v1/ingest/{platform}/items"


def _by_rule(operation: str, error: dict[str, Any]) -> bool:
    return any(
        op in ("*", operation)
        and re.fullmatch(field, str(error.get("field")))
        and words in error.get("reason", "")
        for op, field, words in DOCUMENTED_RULES
    )


# Answers to a secret the fuzzer cannot know (a refresh token, a device code, a user code it
# made up): RFC 6749 5.2 and RFC 8628 3.5 errors, and a user code no TV waits with; and the dev
# grant, listed in the document but served only with AUTH_DEV_MODE (unsupported_grant_type).
UNKNOWN_SECRET = {
    "POST /api/v1/auth/token": {
        "unsupported_grant_type",
        "invalid_grant",
        "invalid_scope",
        "authorization_pending",
        "slow_down",
        "expired_token",
        "access_denied",
    },
    "POST /api/v1/auth/device/approve": {"invalid_user_code"},
    "POST /api/v1/auth/device/deny": {"invalid_user_code"},
}


def refused_by_documented_rule(operation: str, status: int, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if status == 400 and body.get("error") in UNKNOWN_SECRET.get(operation, ()):
        return True
    # One credential per request (docs/AUTH.md): the fuzzer's Authorization header beside a
    # drawn `?ticket=` on the stream is the documented 400.
    if status == 400 and body.get("error") == "invalid_request":
        return True
    if status != 422:
        return False
    # The fuzzer draws the same Idempotency-Key ("0") for different requests: refusing the
    # reuse is the documented rule (docs/HTTP_CONTRACT.md).
    if body.get("error") == "idempotency_key_reused":
        return True
    if operation == BATCH:
        return body.get("accepted") == 0 and bool(body.get("results"))
    errors = body.get("fields") or []
    return bool(errors) and all(_by_rule(operation, e) for e in errors)


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """False drops the failure: only "schema-valid request rejected" by a documented rule, and
    "schema-violating request accepted" when it was refused, with 431 (headers over the limit:
    the protocol layer refuses them before any route, a status Schemathesis does not expect)."""
    if failure.code == "ST201":
        return response.status_code != 431
    if failure.code != "ST202":
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    return not refused_by_documented_rule(operation, response.status_code, body)
