"""Continuation tokens and list parameters shared by every collection."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chalicelib.errors import FieldProblem, ValidationFailed

T = TypeVar("T")
DEFAULT_TOP = 100
MAX_TOP = 1000
# Items one request may read while filtering or skipping; past it the page ends with a nextLink.
READ_BUDGET = 1000


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after this id, with this many matches still to skip."""

    after: str | None = None
    skip: int = 0


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a collection; ``next`` is None on the last page."""

    items: list[T]
    next: Cursor | None
    count: int | None


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps({"a": cursor.after, "s": cursor.skip}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        padded = token + "=" * (-len(token) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, skip = data["a"], data["s"]
        if not (after is None or isinstance(after, str)) or not isinstance(skip, int) or skip < 0:
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationFailed(
            [FieldProblem("$skiptoken", "The continuation token is not valid; start again.")]
        ) from None
    return Cursor(after, skip)


def parse_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter, or a validation error naming it."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed(
            [FieldProblem(name, f"'{name}' must be an integer from {low} to {high}.")]
        )
    return value
