"""Domain errors, named after the condition; api/errors.py maps each to HTTP in one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One offending field, reported in the error body's ``details``."""

    target: str
    message: str
    code: str = "ValidationError"


class DomainError(Exception):
    """Base of every error a caller may see; the message is safe to show."""

    def __init__(self, message: str, details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(DomainError):
    """One or more fields contain incorrect values."""

    def __init__(self, details: list[FieldProblem]) -> None:
        super().__init__("One or more fields contain incorrect values:", details)


class MalformedRequest(DomainError):
    """The request cannot be read (bad JSON, too large, wrong shape)."""


class MissingApiVersion(DomainError):
    """The api-version query parameter is absent."""


class UnsupportedApiVersion(DomainError):
    """The api-version query parameter names a version we do not serve."""


class NotAuthenticated(DomainError):
    """Missing, malformed, forged or expired credentials."""


class ResourceNotFound(DomainError):
    """The addressed entity (or route, or instance) does not exist."""


class SignUpClosed(DomainError):
    """The portal's sign-up settings (portalsettings/signup) do not allow sign-up."""


class MethodNotAllowed(DomainError):
    """The route exists but not with this HTTP method, or the entity is read-only."""


class EmailTaken(DomainError):
    """Another account already uses this email address (compared case-insensitively)."""


class PreconditionFailed(DomainError):
    """If-Match does not match the entity's current ETag."""


class ServiceBusy(DomainError):
    """A dependency throttled us or kept conflicting; nothing changed, the call can be retried."""


class IdTaken(Exception):
    """Internal, never shown: a create found its id taken, so the PUT becomes a replace."""


class LinkUnusable(DomainError):
    """The link existed but is expired, used, revoked or replaced."""

    def __init__(self, message: str, reason: str = "used") -> None:
        super().__init__(message)
        self.reason = reason


class UnknownLink(DomainError):
    """No link has this token."""


class StateConflict(DomainError):
    """The entity is not in a state that allows this (e.g. resending to an active user)."""


class LastAdministrator(StateConflict):
    """Blocking or deleting this account would leave no active administrator."""


class HasSubscriptions(StateConflict):
    """The account (or product) still has subscriptions, and deleting them was not asked for."""


class LimitReached(StateConflict):
    """The user already holds as many subscriptions to the product as it allows."""


class Throttled(DomainError):
    """Too many attempts from this account or address in the current window."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
