"""Query strings the routes read themselves: errors in FastAPI's shape (422, each parameter
named with its reason), the parameters a route does not take, and the patterns the OpenAPI
document gives values a route takes in any case."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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


def any_case(values: Iterable[str]) -> str:
    """A pattern matching exactly these values, in any case: JSON Schema patterns take no
    flags, so each letter is a class of its two cases ('PG-13' -> '[Pp][Gg]-13')."""

    def char(c: str) -> str:
        if c.isalpha():
            return f"[{c.upper()}{c.lower()}]"
        # '-' outside a class is literal, and ECMA-262's unicode mode refuses '\-' there.
        return c if c == "-" else re.escape(c)

    alternatives = ("".join(char(c) for c in value) for value in values)
    return f"^(?:{'|'.join(alternatives)})$"
