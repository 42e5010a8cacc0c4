"""Liveness, readiness and Prometheus metrics on the gateway's own port.

The same readiness and metrics are also served on METRICS_PORT (gateway/resources.py), where the
scrape config looks for them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])

# What core/observability/health.py `aggregate` writes; documented by hand because the route
# answers a JSONResponse (FastAPI documented the 200 as {}). Each component carries its
# check's own details besides these, hence open.
READINESS_REPORT: dict[str, Any] = {
    "type": "object",
    "required": ["status", "components", "failing"],
    "properties": {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "components": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["status", "latency_ms", "error", "required"],
                "properties": {
                    "status": {"type": "string"},
                    "latency_ms": {"type": "number"},
                    "error": {"type": ["string", "null"]},
                    "required": {"type": "boolean"},
                },
            },
        },
        "failing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "`name: reason` of each component that is not healthy",
        },
    },
}


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/health/ready",
    responses={
        200: {
            "description": "every required dependency answers (status healthy, or degraded "
            "when an optional one does not): the readiness report",
            "content": {"application/json": {"schema": READINESS_REPORT}},
        },
        503: {
            "description": "a required dependency is down: the readiness report",
            "content": {"application/json": {"schema": READINESS_REPORT}},
        },
    },
)
async def ready(request: Request) -> JSONResponse:
    health = getattr(request.app.state, "health", None)
    if health is None:  # the lifespan has not run (or has ended)
        body: dict[str, Any] = {
            "status": "unhealthy",
            "components": {},
            "failing": ["gateway: not started"],
        }
        return JSONResponse(body, status_code=503)
    status, body = await health.ready()
    return JSONResponse(body, status_code=status)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
