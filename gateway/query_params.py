"""Query strings the routes read themselves: errors in FastAPI's shape (422, each parameter
named with its reason), and the parameters a route does not take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import QueryParams


def query_error(name: str, message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": ("query", name), "msg": message, "type": kind}


def unknown_parameters(params: QueryParams, known: Mapping[str, object]) -> list[dict[str, Any]]:
    """One error per parameter the route does not take: a typo must not be ignored silently."""
    return [
        query_error(name, f"unknown parameter; known: {', '.join(known)}", "extra_forbidden")
        for name in dict.fromkeys(params.keys())
        if name not in known
    ]
