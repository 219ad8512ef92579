"""A signed-in developer's own account: names, email change by confirmed link, closing it."""

from __future__ import annotations

from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import ANY, Expected
from chalicelib.domain.links import Link, LinkPurpose, LinkState
from chalicelib.domain.portal import NotificationName
from chalicelib.domain.users import User, UserChanges, UserState, email_key
from chalicelib.errors import FieldProblem, LinkUnusable, ValidationFailed
from chalicelib.services.accounts import AccountService
from chalicelib.services.audit import Audit, user_target
from chalicelib.services.invitations import InvitationService
from chalicelib.services.notifications import NotificationService
from chalicelib.services.ports import Store, Tx
from chalicelib.services.throttle import Limit, Throttle

# Confirmation emails a developer may have sent in an hour: each goes to an address they name,
# so a session must not become a way to mail anyone at will.
EMAIL_CHANGES_PER_HOUR = 5
SAME_ADDRESS = "This is already your email address."


class ProfileService:
    """The developer's self-service; every change goes through the admin's account rules."""

    def __init__(
        self,
        store: Store,
        accounts: AccountService,
        invitations: InvitationService,
        throttle: Throttle,
        clock: Clock,
        *,
        audit: Audit,
        notifications: NotificationService,
    ) -> None:
        self._notifications = notifications
        self._store = store
        self._accounts = accounts
        self._invitations = invitations
        self._throttle = throttle
        self._clock = clock
        self._audit = audit

    def change_names(self, user: User, first: str, last: str, expected: Expected) -> User:
        """First and last name, both given (the edge checks them); conditional on the version
        the developer's page showed."""
        return self._accounts.update(
            user.id, UserChanges(first_name=first, last_name=last), expected
        )

    def request_email_change(self, user: User, new_email: str) -> Link:
        """Mail ``emailChangeIdentityDefault`` to the new address; nothing changes until its
        link is confirmed, and a newer request replaces an older link.

        Whether another account has the address is not checked here: saying so would tell any
        developer which addresses are registered. Only the new mailbox's reader, who owns that
        address, hears it, when confirming.
        """
        if email_key(new_email) == user.email_key:
            raise ValidationFailed([FieldProblem("email", SAME_ADDRESS)])
        self._throttle.count(
            [Limit("email-change:account", user.id, EMAIL_CHANGES_PER_HOUR)], refuse=True
        )
        tx = self._store.transaction()
        self._invitations.stage_kill_pending(tx, user.id, {LinkPurpose.EMAIL})
        issued = self._invitations.stage_issue(tx, user, LinkPurpose.EMAIL, new_email=new_email)
        self._audit.stage(tx, "email.change_requested", user_target(user), by_user=user.id)
        tx.commit()
        return issued.link

    def open_email_change(self, token: str) -> tuple[Link, User]:
        """What the confirmation page shows; reading never consumes the token."""
        return self._invitations.open(token, LinkPurpose.EMAIL, UserState.ACTIVE)

    def confirm_email_change(self, token: str) -> User:
        """The account takes the new address, through the same change as an administrator's
        (email lock, identities, audit), and the link ends in that transaction.

        Links and queued emails bound to the old address die by themselves (they name it).
        EmailTaken when another account has taken the address meanwhile; nothing changes then.
        """
        link, _ = self.open_email_change(token)
        used = LinkUnusable("This link has already been used.", LinkState.ACCEPTED.value)

        def end_link(tx: Tx) -> None:
            self._store.links.stage_end(tx, link, LinkState.ACCEPTED, self._clock())

        try:
            return self._accounts.update(
                link.user_id, UserChanges(email=link.new_email), ANY, also=end_link
            )
        except LinkUnusable as exc:
            raise used from exc

    def close_account(self, user: User) -> None:
        """The developer closes their account: subscriptions go (their keys stop at once), the
        farewell ``accountClosedDeveloper`` is staged with the delete, the address is free."""

        def tell_publishers(tx: Tx) -> None:
            # AccountClosedPublisher goes in the delete's own transaction.
            self._notifications.stage(tx, NotificationName.ACCOUNT_CLOSED, user)

        self._accounts.delete(
            user.id, ANY, notify=True, delete_subscriptions=True, also=tell_publishers
        )
