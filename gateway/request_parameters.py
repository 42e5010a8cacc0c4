"""Path and header parameters of the routes that parse their own requests (the fast lane's,
gateway/fast_lane.py), each declared once: the same declaration writes the parameter into the
OpenAPI document and reads it from a request, so the two cannot disagree.

A bad value is a 422 naming the parameter (("path", "user_id"), ("header", "X-Device-ID")) and
the pattern it must match, in FastAPI's error shape (gateway/errors.py).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

USER_ID_PATTERN = r"^[A-Za-z0-9._:@|-]{1,128}$"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def invalid(loc: tuple[str, ...], message: str, value: object = None) -> RequestValidationError:
    """A 422 naming the field (`loc`, e.g. ("path", "user_id")) and the reason."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


@dataclass(frozen=True)
class TextParameter:
    """A path parameter: text matching `pattern`."""

    name: str
    pattern: str
    what: str
    description: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def openapi(self) -> dict[str, Any]:
        return _path_parameter(self.name, {"type": "string", "pattern": self.pattern}, self)

    def read(self, request: Request) -> str:
        value = str(request.path_params.get(self.name, ""))
        if not self._compiled.fullmatch(value):
            raise invalid(("path", self.name), f"{self.what} must match {self.pattern}", value)
        return value


@dataclass(frozen=True)
class UuidParameter:
    """A path parameter: a UUID."""

    name: str
    description: str

    def openapi(self) -> dict[str, Any]:
        return _path_parameter(self.name, {"type": "string", "format": "uuid"}, self)

    def read(self, request: Request) -> uuid.UUID:
        value = str(request.path_params.get(self.name, ""))
        try:
            return uuid.UUID(value)
        except ValueError:
            raise invalid(("path", self.name), "must be a UUID", value) from None


@dataclass(frozen=True)
class TypedParameter:
    """A path parameter of a pydantic type, read and documented as FastAPI does a typed one
    (`content_id: uuid.UUID` in a signature): the same schema, the same error words. For
    routes that FastAPI served before they moved to the fast lane, whose errors are the
    contract."""

    name: str
    kind: type[Any]
    _adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", TypeAdapter(self.kind))

    def openapi(self) -> dict[str, Any]:
        schema = {**self._adapter.json_schema(), "title": self.name.replace("_", " ").title()}
        return {"name": self.name, "in": "path", "required": True, "schema": schema}

    def read(self, request: Request) -> Any:
        try:
            return self._adapter.validate_python(str(request.path_params.get(self.name, "")))
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("path", self.name)} for err in exc.errors(include_url=False)]
            ) from None


PathParameter = TextParameter | UuidParameter | TypedParameter


@dataclass(frozen=True)
class LimitParameter:
    """`?limit=`: how many items a page holds, a whole number from 1 to `maximum`."""

    maximum: int
    default: int

    def openapi(self) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": self.maximum, "default": self.default}
        return {"name": "limit", "in": "query", "required": False, "schema": schema}

    def read(self, request: Request) -> int:
        raw = request.query_params.get("limit", str(self.default))
        if not raw.isdigit() or not 1 <= int(raw) <= self.maximum:
            raise invalid(
                ("query", "limit"), f"must be a whole number from 1 to {self.maximum}", raw
            )
        return int(raw)


def _path_parameter(name: str, schema: dict[str, Any], of: PathParameter) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": of.description,
    }


@dataclass(frozen=True)
class DeviceHeader:
    """The acting (or listening) device, from X-Device-ID."""

    required: bool
    name: str = "X-Device-ID"

    def openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "header",
            "required": self.required,
            "schema": {"type": "string", "pattern": DEVICE_ID_PATTERN},
            "description": "the device acting (or listening)",
        }

    def read(self, request: Request) -> str | None:
        value = request.headers.get(self.name)
        if value is None:
            if self.required:
                raise invalid(("header", self.name), "the acting device's id is required")
            return None
        if not _DEVICE_ID.fullmatch(value):
            raise invalid(("header", self.name), f"must match {DEVICE_ID_PATTERN}", value)
        return value


_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

USER_ID = TextParameter(
    "user_id", USER_ID_PATTERN, "a user id", "the caller's own user id (admins: any user's)"
)
DEVICE_ID = TextParameter(
    "device_id", DEVICE_ID_PATTERN, "a device id", "one of the user's devices"
)
CONTENT_ID = UuidParameter("content_id", "the title")
ACTING_DEVICE = DeviceHeader(required=True)
MAYBE_ACTING_DEVICE = DeviceHeader(required=False)
