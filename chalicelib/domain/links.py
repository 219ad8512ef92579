"""One-time links (invitation, sign-up, password reset, email change): tokens, states, expiry."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chalicelib.domain.users import User


class LinkPurpose(StrEnum):
    """What following the link does; a token is bound to exactly one purpose."""

    INVITE = "invite"
    SIGNUP = "signup"
    RESET = "reset"
    EMAIL = "email"


# Where each link lands in the portal (the page that reads the token and asks for a password).
LINK_PATHS = {
    LinkPurpose.INVITE: "/confirm/invitation",
    LinkPurpose.SIGNUP: "/confirm-v2/identities/basic/signup",
    LinkPurpose.RESET: "/confirm-v2/password",
    LinkPurpose.EMAIL: "/confirm-v2/identities/basic/email",
}


class LinkState(StrEnum):
    """Pending until accepted, revoked, or expired."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Link:
    """A link as stored: the SHA-256 of its token, never the token."""

    user_id: str
    link_id: str
    purpose: LinkPurpose
    state: LinkState
    token_hash: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    message_id: str | None = None
    # The normalized address it was sent to ("" on links from before addresses were bound).
    email_key: str = ""
    # An email change's link: the address it was sent to, which confirming it makes the
    # account's ("" for every other purpose).
    new_email: str = ""

    def applies_to(self, user: User) -> bool:
        """A link serves the account it was made for, at the address it was sent to.

        An email change kills every link sent to the old address without a query, and a link
        never serves a later account that reuses the id.
        """
        return (
            user.id == self.user_id
            and user.registration_date <= self.created_at
            and (not self.email_key or self.email_key == user.email_key)
        )

    def state_at(self, now: datetime) -> LinkState:
        """Expiry is decided here, at read time, whatever TTL or the sweep has done yet."""
        if self.state is LinkState.PENDING and now >= self.expires_at:
            return LinkState.EXPIRED
        return self.state


def new_token() -> tuple[str, str]:
    """32 random bytes, URL-safe, and the SHA-256 hex digest that is all we keep."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_link_id(now: datetime) -> str:
    """Sorts by creation time, unique without coordination."""
    return f"{now.strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(4)}"
