"""`GET /api/v1/auth/whoami`: what the gateway made of the caller's credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from gateway.auth.dependencies import authenticate
from gateway.auth.principal import Principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class WhoAmI(BaseModel):
    kind: str
    subject: str
    scopes: list[str]
    roles: list[str]
    tier: str
    name: str | None = None


@router.get("/whoami", response_model=WhoAmI, responses={401: {"description": "no credential"}})
async def whoami(
    principal: Annotated[Principal, Depends(authenticate)], response: Response
) -> WhoAmI:
    # Per caller by nature: no cache (ours or downstream) may keep it.
    response.headers["Cache-Control"] = "no-store"
    return WhoAmI(
        kind=principal.kind,
        subject=principal.subject,
        scopes=sorted(principal.scopes),
        roles=sorted(principal.roles),
        tier=str(principal.tier),
        name=principal.name,
    )
