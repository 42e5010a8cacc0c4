"""When the credential of a request that opens a stream or socket expires: it ends then.

Only user tokens open streams (API keys never act for users), and by the time this is asked
the authenticator has verified the token, so reading its `exp` claim without checking the
signature again is reading a verified value.
"""

from __future__ import annotations

import jwt
from starlette.requests import HTTPConnection

from gateway.auth.dependencies import API_KEY_HEADER, extract_credential


def token_expiry(token: str) -> float:
    """The `exp` (epoch seconds) of a bearer token the authenticator already verified."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])


def credential_expiry(conn: HTTPConnection) -> float:
    """The `exp` of the verified bearer token in the request's (or WebSocket's) headers."""
    credential = extract_credential(
        conn.headers.get("authorization"), conn.headers.get(API_KEY_HEADER)
    )
    if credential is None or credential.kind != "bearer":
        raise ValueError("only a bearer token opens a stream")
    return token_expiry(credential.value)
