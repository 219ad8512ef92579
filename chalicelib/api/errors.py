"""The one table that maps domain errors to HTTP status and APIM error codes."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

from chalicelib import errors

ERROR_TABLE: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.ValidationFailed: (400, "ValidationError"),
    errors.MalformedRequest: (400, "ValidationError"),
    errors.MissingApiVersion: (400, "MissingApiVersionParameter"),
    errors.UnsupportedApiVersion: (400, "InvalidApiVersionParameter"),
    errors.NotAuthenticated: (401, "Unauthorized"),
    errors.ResourceNotFound: (404, "ResourceNotFound"),
    errors.SignUpClosed: (404, "ResourceNotFound"),
    errors.MethodNotAllowed: (405, "MethodNotAllowed"),
    errors.EmailTaken: (409, "Conflict"),
    errors.StateConflict: (409, "Conflict"),
    errors.LinkUnusable: (410, "Gone"),
    errors.UnknownLink: (404, "ResourceNotFound"),
    errors.PreconditionFailed: (412, "PreconditionFailed"),
    errors.Throttled: (429, "TooManyRequests"),
    errors.ServiceBusy: (503, "ServiceUnavailable"),
}
INTERNAL = (500, "InternalServerError")


def error_body(code: str, message: str, details: list[errors.FieldProblem]) -> dict[str, Any]:
    """APIM's error body; ``details`` lists every offending field."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [
                {"code": d.code, "target": d.target, "message": d.message} for d in details
            ],
        }
    }


def status_and_code(exc: errors.DomainError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return INTERNAL


def error_response(exc: errors.DomainError, headers: dict[str, str] | None = None) -> Response:
    """The HTTP response for a domain error."""
    status, code = status_and_code(exc)
    body = error_body(code, exc.message, exc.details)
    merged: dict[str, str | list[str]] = {
        "Content-Type": "application/json; charset=utf-8",
        **(headers or {}),
    }
    if status == 401:
        merged["WWW-Authenticate"] = 'SharedAccessSignature realm="management"'
    if isinstance(exc, errors.Throttled):
        merged["Retry-After"] = str(exc.retry_after)
    return Response(body=json.dumps(body), status_code=status, headers=merged)


def internal_error_response(request_id: str, message: str | None = None) -> Response:
    text = message or f"An unexpected error occurred; request id {request_id}."
    body = error_body(INTERNAL[1], text, [])
    return Response(
        body=json.dumps(body),
        status_code=INTERNAL[0],
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
