"""Audit events: who changed what, when, from where; never a password, hash, token or key."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Fields whose values never enter an event; only the fact that they changed does.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "passwordHash",
        "token_epoch",
        "primaryKey",
        "secondaryKey",
        "validationKey",
    }
)
REDACTED = "(changed)"


@dataclass(frozen=True)
class AuditEvent:
    """One account change (or refused attempt)."""

    id: str
    time: datetime
    action: str
    actor: str
    actor_kind: str
    address: str
    request_id: str
    target_type: str
    target_id: str
    target_email: str | None = None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return f"{self.target_type}#{self.target_id}"


_sequence = itertools.count()


def new_event_id(now: datetime) -> str:
    """Sorts by time, then by order within this process (one request's events share a clock
    reading); unique without coordination."""
    return f"{now.strftime('%Y%m%dT%H%M%S%f')}-{next(_sequence) % 10**9:09d}-{secrets.token_hex(4)}"


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` for every field that differs; secrets only say they changed."""
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if name in SECRET_FIELDS:
            if after is not None:  # a deleted account's password did not "change"
                changes[name] = {"old": None, "new": REDACTED}
        else:
            changes[name] = {"old": before, "new": after}
    return changes
