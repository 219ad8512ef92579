"""ETags derived from entity versions, in APIM's shape (base64 of a 64-bit number)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from chalicelib.errors import PreconditionFailed

T = TypeVar("T")


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


@dataclass(frozen=True)
class Expected:
    """The version a change is conditional on, parsed from If-Match at the edge.

    ``version`` None is ``*`` (any version). A value that names no version at all is kept as
    ``NEVER``, so it fails the check where a stale one would (after a 404, not before it).
    """

    version: int | None = None

    def check(self, current: int) -> None:
        """412 unless this is ``*`` or names ``current``."""
        if self.version is not None and self.version != current:
            raise PreconditionFailed(
                "The entity was changed meanwhile; read it again (ETag mismatch)."
            )


ANY = Expected()
NEVER = Expected(-1)


def expected_from_if_match(value: str) -> Expected:
    """The Expected an If-Match header value names."""
    try:
        return Expected(version_from_if_match(value))
    except PreconditionFailed:
        return NEVER


def check_expected(expected: Expected | None, current: int) -> None:
    """No precondition passes; otherwise ``expected`` must match ``current``."""
    if expected is not None:
        expected.check(current)


def save_over_what_was_read(
    expected: Expected | None, attempt: Callable[[], T], rounds: int, gave_up: str
) -> T:
    """Run ``attempt`` (read, check ``expected``, stage, commit) until it commits.

    A conditional save fails at its first PreconditionFailed. An unconditional one (no
    If-Match, or ``*``) that meets a concurrent save reads again and retries: each lost round
    means another save committed, so racers finish one by one (last writer wins).
    """
    unconditional = expected is None or expected.version is None
    for _ in range(rounds):
        try:
            return attempt()
        except PreconditionFailed:
            if not unconditional:
                raise
    raise PreconditionFailed(gave_up)
