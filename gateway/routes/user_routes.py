"""How the routes under /api/v1/users/{user_id} are declared: their parameters (one
declaration each, gateway/request_parameters.py, read by the endpoint and written into the
OpenAPI operation), their place on the fast lane (gateway/fast_lane.py), and the answers they
share.

Their endpoints take only the `Request` and check in this order: credential (401), scope
(403), path, headers and body (422), ownership (403) (gateway/auth/dependencies.py's
`own_user`).
"""

from __future__ import annotations

from typing import Any

from gateway.device_ownership import UNKNOWN_DEVICE
from gateway.fast_lane import MARKER
from gateway.idempotency import PARAMETER as IDEMPOTENCY_PARAMETER
from gateway.lookup import AGENT_FAILED_RESPONSE
from gateway.request_parameters import DeviceHeader, PathParameter


def documented(
    *path: PathParameter,
    device: DeviceHeader | None = None,
    write: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """openapi_extra of a fast route: its path parameters, the X-Device-ID header (None: not
    taken), the Idempotency-Key header of writes, and `extra` (a body, more parameters)."""
    parameters = [p.openapi() for p in path]
    if device is not None:
        parameters.append(device.openapi())
    if write:
        parameters.append(IDEMPOTENCY_PARAMETER)
    out: dict[str, Any] = {"parameters": parameters}
    for key, value in (extra or {}).items():
        if key == "parameters":
            out["parameters"].extend(value)
        else:
            out[key] = value
    out[MARKER] = True
    return out


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid credential"},
    403: {"description": "missing scope, or another user's id"},
    415: {"description": "a body that is not JSON"},
    422: {"description": "invalid path, header or body fields, each named with the reason"},
    503: {
        "description": "not accepted: the broker is down (`broker_unavailable`, "
        "`dependency_unavailable`), or Redis, whose per-user clocks stamp watchlist, progress "
        "and device writes (`redis_unavailable`); or the outcome is unknown "
        "(`outcome_unknown`: retry with the same Idempotency-Key, it is applied once)"
    },
}


def responses_with_rules(*rules: str) -> dict[int | str, dict[str, Any]]:
    """RESPONSES whose 422 also names these rules: rules across fields, or against the
    server's clock, that the JSON Schema of a request cannot state (tests/edge/fuzz_rules.py)."""
    described = RESPONSES[422]["description"] + "; also refused: " + "; ".join(rules)
    return {**RESPONSES, 422: {"description": described}}


def device_checked(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses` whose 403 also names `unknown_device`: the operation names a device, which
    must be registered to the user (gateway/device_ownership.py)."""
    described = f"{responses[403]['description']}; or {UNKNOWN_DEVICE}"
    return {**responses, 403: {"description": described}}


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid credential"},
    403: {"description": "missing scope, or another user's id"},
    422: {"description": "invalid path or query fields, each named with the reason"},
    503: {"description": "not in the read model and no sync agent answered; retry"},
    **AGENT_FAILED_RESPONSE,
}
