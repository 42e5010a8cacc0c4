"""The 202 of every write: where the broker put the event, and what the client needs later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Response
from pydantic import BaseModel

if TYPE_CHECKING:
    # Only its shape: the 202 is built without reaching the broker client (a pure module).
    from core.publisher import Published


class Accepted(BaseModel):
    """The broker has the event: where it is, and its id for tracing."""

    event_id: str
    topic: str
    partition: int
    offset: int


def accepted(published: Published, **extra: Any) -> Response:
    """202 with where the broker put the event (the Accepted model, encoded once), plus `extra`
    (a watchlist add's tag, a command's id, ...)."""
    body = {**published.__dict__, **extra} if extra else published.__dict__
    return Response(orjson.dumps(body), 202, media_type="application/json")
