"""Answers to requests the API cannot take: a 4xx with the reason, never a 500.

FastAPI's own 422 handler echoes every invalid value back (`input`), and fails with a 500 on
one it cannot write as JSON: NaN, Infinity and 1e400 (which Python's JSON parser reads as
floats), or a string with a lone surrogate such as "\\ud800". These errors name the field
(`loc`), the reason (`msg`, `type`) and the limit (`ctx`), never the input. A body the JSON
parser gives up on (not UTF-8, nested too deeply, a number with thousands of digits) gets the
same 422 as any other unreadable JSON, where FastAPI answers 400.
"""

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

# What each validation error may show: never "input", the client's own (maybe unwritable) value.
_SHOWN = ("loc", "msg", "type", "ctx")


class _AsciiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # ASCII with \u escapes: a lone surrogate in a field name (`loc`) stays writable.
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    detail = [{key: error[key] for key in _SHOWN if key in error} for error in errors]
    return _AsciiJSONResponse(
        status_code=422,
        content={"detail": jsonable_encoder(detail)},
    )


async def invalid_request(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _unprocessable(list(exc.errors()))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # FastAPI turns any error of the JSON parser other than a syntax error into a 400
    # "There was an error parsing the body", raised from that error.
    if isinstance(exc.__cause__, ValueError | RecursionError):
        return _unprocessable(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body"],
                    "msg": "JSON decode error",
                    "ctx": {"error": str(exc.__cause__)},
                }
            ]
        )
    return await http_exception_handler(request, exc)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
