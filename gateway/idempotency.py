"""`Idempotency-Key`: a write the client retries after an ambiguous answer is applied once.

Two layers, as the IETF draft (draft-ietf-httpapi-idempotency-key-header) describes:

- the answer: gateway/middleware/idempotency.py stores a write's first final answer for
  GATEWAY_IDEMPOTENCY_TTL_S and replays it to a retry of the same request, refuses the key for
  another request (422) or while the first is running (409);
- the effect: an answer that is not stored (a 503 whose outcome is unknown) lets the retry run
  again, and this module makes that harmless. A write that carries the key gets an event id
  derived from the caller, the method, the path and the key (uuid5) instead of a random one;
  so does what identifies the operation downstream (a command's id, a watchlist add's tag, a
  batch item's event id). The retry therefore publishes the same event, and the agents, whose
  effects are idempotent per event (a command is decided once per command id, an OR-Set add
  is the same add, a record is versioned), apply it once. Without the header every request is
  a new operation.

The key names one operation of one caller: keys of different callers never collide. It is
sent as the draft's structured-field string (`Idempotency-Key: "k-1"`) or bare (`k-1`), the
same key either way.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from gateway.auth.principal import PRINCIPAL_KEY, Principal

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
    "description": "names this operation (IETF Idempotency-Key draft): a retry with the same "
    "key and the same request gets the first answer again (with Idempotent-Replayed: true) "
    "and is applied once; the key with another request is 422, while the first still runs "
    "409 (docs/HTTP_CONTRACT.md)",
}


class InvalidKey(ValueError):
    pass


def parse_key(raw: str) -> str:
    """The key of an Idempotency-Key value, quoted (a structured-field string) or bare."""
    key = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    if not 0 < len(key) <= MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidKey(f"1 to {MAX_LENGTH} printable ASCII characters")
    return key


def caller_of(principal: Principal | None) -> str:
    return f"{principal.kind}:{principal.subject}" if principal is not None else "anonymous"


def operation_id(request: Request) -> uuid.UUID:
    """The event id of this write: derived from Idempotency-Key when sent, else random.
    422 for a key that is empty, too long or not printable ASCII."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return uuid.uuid4()
    try:
        key = parse_key(raw)
    except InvalidKey as exc:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "Idempotency-Key"),
                    "msg": str(exc),
                    "input": raw,
                }
            ]
        ) from None
    caller = caller_of(request.scope.get(PRINCIPAL_KEY))
    return uuid.uuid5(_NAMESPACE, f"{caller}\n{request.method}\n{request.url.path}\n{key}")
