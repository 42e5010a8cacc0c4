"""`/problems/{code}`: what a problem's `type` resolves to, one page per error code."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from gateway.errors import error_response
from gateway.problems import TYPES, type_uri

router = APIRouter(prefix="/problems", tags=["problems"])


class ProblemTypeDoc(BaseModel):
    type: str
    error: str
    title: str
    description: str


def _doc(code: str) -> ProblemTypeDoc:
    known = TYPES[code]
    return ProblemTypeDoc(
        type=type_uri(code), error=code, title=known.title, description=known.description
    )


@router.get("", summary="Every problem type the gateway answers with")
async def every_type() -> list[ProblemTypeDoc]:
    return [_doc(code) for code in TYPES]


@router.get(
    "/{code}",
    summary="One problem type: its title and what it means",
    response_model=ProblemTypeDoc,
    responses={404: {"description": "no problem type of this code"}},
)
async def one_type(request: Request, code: str) -> ProblemTypeDoc | Response:
    if code not in TYPES:
        return error_response(404, "not_found", f"no problem type {code!r}", request)
    return _doc(code)
