"""Emails in the outbox: delivery states and the retry schedule."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

MAX_ATTEMPTS = 8
_FIRST_RETRY = timedelta(minutes=5)
_LONGEST_WAIT = timedelta(hours=6)
# A message is the relay's (triggered by the outbox stream) for this long after it is recorded,
# and a claimed attempt is its sender's for this long: only then may the sweep take it.
LEASE = timedelta(minutes=2)


class Delivery(StrEnum):
    """Queued until sent; failed after MAX_ATTEMPTS; cancelled when its link died unsent."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Message:
    """An email to send. ``values`` never hold secrets: links are minted when it is sent."""

    id: str
    template: str
    to_email: str
    user_id: str
    values: dict[str, str]
    created_at: datetime
    next_attempt_at: datetime
    link: tuple[str, str] | None = None
    state: Delivery = Delivery.QUEUED
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None
    # To a recipient of a publisher notification (its own email, or a BCC copy of a developer's):
    # sent to the address recorded, whatever its user's address is now, and never copied again.
    publisher: bool = False
    # Sent by the process that recorded it (apim-users create-admin prints the link it mails),
    # so the stream's relay leaves it; the sweep sends it if that process never did.
    held: bool = False


class MessageTaken(Exception):
    """Another sender (the relay or the sweep) claimed this attempt first: it sends, not us."""


def new_message_id() -> str:
    return secrets.token_hex(12)


def retry_delay(attempts: int) -> timedelta:
    """5 minutes, doubling, at most 6 hours between attempts."""
    return min(_FIRST_RETRY * (1 << max(attempts - 1, 0)), _LONGEST_WAIT)


# The APIM templates this service sends outside a link's own email.
WELCOME = "newDeveloperNotificationMessage"
CLOSED = "accountClosedDeveloper"
# Not an email: a task the relay runs once an account is deleted (its links and memberships).
ACCOUNT_DELETED = "#accountDeleted"
# The task's value naming the deleted account's registration date (ISO 8601).
REGISTERED = "RegistrationDate"
PASSWORD_CHANGED = "passwordResetByAdminNotificationMessage"
