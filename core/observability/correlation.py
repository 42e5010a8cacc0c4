"""The correlation id that ties a request to every log line and record it causes."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = "X-Request-ID"
KAFKA_HEADER = "correlation_id"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
# Ids from clients are echoed into logs and headers: keep them short and printable.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def new_id() -> str:
    return uuid.uuid4().hex


def accept(candidate: str | None) -> str:
    """The client's id when it is sane, else a fresh one."""
    # fullmatch, not match: `$` also matches before a trailing newline, which would let
    # "id\n" (and a 129-character id ending in one) through into logs and headers.
    if candidate and _ACCEPTABLE.fullmatch(candidate):
        return candidate
    return new_id()


def current() -> str | None:
    return _current.get()


@contextmanager
def bound(correlation_id: str | None) -> Iterator[None]:
    token = _current.set(correlation_id)
    try:
        yield
    finally:
        _current.reset(token)


def set_current(correlation_id: str | None) -> contextvars.Token[str | None]:
    return _current.set(correlation_id)


def reset(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)
