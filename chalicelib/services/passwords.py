"""Password reset by email (admin-sent or self-service), and the reset page's POST."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.domain.audit import REDACTED
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import Expected, check_expected, next_version
from chalicelib.domain.links import Link, LinkPurpose, LinkState
from chalicelib.domain.messages import PASSWORD_CHANGED as CHANGED
from chalicelib.domain.passwords import HashParameters, hash_password
from chalicelib.domain.users import (
    REVOKED_RESET,
    User,
    UserState,
    checked_password,
    email_key,
    new_token_epoch,
)
from chalicelib.errors import LinkUnusable, PreconditionFailed, StateConflict
from chalicelib.services.audit import Audit, user_target
from chalicelib.services.invitations import InvitationService
from chalicelib.services.mailing import MailService
from chalicelib.services.ports import Store
from chalicelib.services.throttle import Limit, Throttle


class PasswordService:
    """Reset links live an hour (configurable); a new one, a new password or a block kills them."""

    def __init__(
        self,
        store: Store,
        invitations: InvitationService,
        mail: MailService,
        throttle: Throttle,
        settings: Settings,
        clock: Clock,
        hashing: HashParameters,
        *,
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._store = store
        self._invitations = invitations
        self._mail = mail
        self._throttle = throttle
        self._settings = settings
        self._clock = clock
        self._hashing = hashing

    def _send_link(self, user: User, held: bool = False) -> str:
        """Record the reset link and its email; the relay sends it (or, ``held``, the caller
        does). Returns the message id."""
        tx = self._store.transaction()
        self._audit.stage(tx, "password.reset_requested", user_target(user))
        issued = self._invitations.stage_issue(tx, user, LinkPurpose.RESET, held=held)
        # The account names its one usable reset link: the one before dies without a query.
        self._store.users.stage_record_reset(tx, user, issued.link.link_id)
        tx.commit()
        return issued.message.id

    def send_by_admin(
        self, user_id: str, expected: Expected | None = None, *, held: bool = False
    ) -> str:
        """The admin's "Reset password": an email with a one-time link (its message id).

        ``expected`` is the version the admin was looking at (the console's page), if any;
        ``held``: the caller sends the email itself (``OutboxRelay.send_now``), to read its link.
        """
        user = self._store.users.require(user_id)
        check_expected(expected, user.version)
        if user.state is not UserState.ACTIVE:
            hint = " Resend the invitation instead." if user.state is UserState.PENDING else ""
            raise StateConflict(
                f"User '{user_id}' is {user.state.value}; only active users can reset.{hint}"
            )
        return self._send_link(user, held)

    def request(self, email: str, client: str) -> None:
        """Self-service: the same outcome for every address; mail only to an active account."""
        key = email_key(email)
        # Per (account, client address): another address's requests never use up the owner's.
        self._throttle.count(
            [
                Limit("reset:pair", key, self._settings.resets_per_account_address, client),
                Limit("reset:address", client, self._settings.resets_per_address),
            ],
            refuse=True,
        )
        user = self._store.users.find_by_email(key) if key else None
        if user is not None and user.state is UserState.ACTIVE:
            try:
                self._send_link(user)
            except PreconditionFailed:
                # Another request recorded a reset link meanwhile, and its email goes out; the
                # answer stays the one every address gets.
                return

    def open(self, token: str) -> tuple[Link, User]:
        link, user = self._invitations.open(token, LinkPurpose.RESET, UserState.ACTIVE)
        return link, user

    def reset(self, token: str, password: str | None) -> User:
        """Set the new password, consume the link, end every session, say so by email."""
        link, user = self.open(token)
        password = checked_password(password, user)
        now = self._clock()
        changed = replace(
            user,
            password_hash=hash_password(password, self._hashing),
            token_epoch=new_token_epoch(),
            reset_link=REVOKED_RESET,
            version=next_version(user.version, now),
        )
        used = LinkUnusable("This link has already been used.", LinkState.ACCEPTED.value)
        tx = self._store.transaction()
        self._store.links.stage_end(tx, link, LinkState.ACCEPTED, now)
        self._store.users.stage_replace(tx, user, changed, on_fail=lambda: used)
        self._mail.stage(tx, CHANGED, changed)
        secret = {"password": {"old": None, "new": REDACTED}}
        self._audit.stage(
            tx, "password.reset_completed", user_target(user), secret, by_user=user.id
        )
        tx.commit()
        return changed
