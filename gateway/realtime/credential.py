"""When the credential of a request that opens a stream expires: the stream ends then.

Only user tokens open streams (API keys never act for users), and by the time this is asked
the authenticator has verified the token, so reading its `exp` claim without checking the
signature again is reading a verified value.
"""

from __future__ import annotations

import jwt
from fastapi import Request

from gateway.auth.dependencies import extract_credential


def credential_expiry(request: Request) -> float:
    """The `exp` (epoch seconds) of the request's verified bearer token."""
    credential = extract_credential(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    if credential is None or credential.kind != "bearer":
        raise ValueError("only a bearer token opens a stream")
    claims = jwt.decode(credential.value, options={"verify_signature": False})
    return float(claims["exp"])
