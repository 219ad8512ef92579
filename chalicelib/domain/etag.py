"""ETags derived from entity versions, in APIM's shape (base64 of a 64-bit number)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from chalicelib.errors import PreconditionFailed


def next_version(previous: int, now: datetime) -> int:
    """A version that grows on every change and never repeats across delete and re-create.

    Microseconds since the epoch, bumped past the previous value, so a stale ETag of a deleted
    entity never matches a new entity with the same id.
    """
    return max(previous + 1, int(now.timestamp() * 1_000_000))


def etag_of(version: int) -> str:
    """The quoted ETag header value for a version."""
    return '"' + base64.b64encode(version.to_bytes(8, "big")).decode("ascii") + '"'


def version_from_if_match(if_match: str) -> int | None:
    """The version an If-Match value names; None for ``*``. Unparseable values match nothing."""
    value = if_match.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip().strip('"')
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PreconditionFailed("The If-Match value does not match the entity's ETag.") from None
    if len(raw) != 8:
        raise PreconditionFailed("The If-Match value does not match the entity's ETag.")
    return int.from_bytes(raw, "big")
