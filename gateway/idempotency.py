"""`Idempotency-Key`: a write the client retries after an ambiguous answer is applied once.

A publish that timed out may still have been written (the broker can acknowledge after the
gateway stopped waiting), so its 503 says "outcome unknown" and a retry must be harmless. A
write that carries `Idempotency-Key` gets an event id derived from the caller, the method,
the path and the key (uuid5), instead of a random one; so does what identifies the operation
downstream (a command's id, a watchlist add's tag). Sending the same request again with the
same key therefore publishes the same event: the agents, whose effects are idempotent per
event (a command is decided once per command id, an OR-Set add is the same add, a record is
versioned), apply it once. Without the header every request is a new operation.

The key names one operation of one caller: keys of different callers never collide, and the
same key on another path is another operation. Reusing a key for a different body is not
detected: the first operation to arrive wins, as with a retry.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from gateway.auth.dependencies import PRINCIPAL_KEY

HEADER = "idempotency-key"
MAX_LENGTH = 255
_NAMESPACE = uuid.UUID("8f5a1d2e-6c3b-4e7a-9d10-3b2c1a0f9e55")

PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    # Printable ASCII; no space at either end, since HTTP drops it from a header's value.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_LENGTH,
        "pattern": "^[!-~]+( +[!-~]+)*$",
    },
    "description": "names this operation: a retry with the same key (after a 503 whose "
    "outcome is unknown, or a lost answer) is applied once",
}


def operation_id(request: Request) -> uuid.UUID:
    """The event id of this write: derived from Idempotency-Key when sent, else random.
    422 for a key that is empty, too long or not printable ASCII."""
    key = request.headers.get(HEADER)
    if key is None:
        return uuid.uuid4()
    if not 0 < len(key) <= MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "Idempotency-Key"),
                    "msg": f"1 to {MAX_LENGTH} printable ASCII characters",
                    "input": key,
                }
            ]
        )
    principal = request.scope.get(PRINCIPAL_KEY)
    caller = f"{principal.kind}:{principal.subject}" if principal is not None else "anonymous"
    return uuid.uuid5(_NAMESPACE, f"{caller}\n{request.method}\n{request.url.path}\n{key}")
