"""Invitations and sign-up confirmations: one-time links that activate a pending account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.config import Settings
from chalicelib.domain.audit import diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import next_version
from chalicelib.domain.links import (
    Link,
    LinkPurpose,
    LinkState,
    hash_token,
    link_named_by,
    new_link_id,
    new_token,
    same_token,
)
from chalicelib.domain.messages import WELCOME, Message
from chalicelib.domain.passwords import HashParameters, hash_password
from chalicelib.domain.users import User, UserState, checked_password
from chalicelib.errors import (
    LinkUnusable,
    StateConflict,
    UnknownLink,
)
from chalicelib.services.audit import Audit, Target, user_fields, user_target
from chalicelib.services.mailing import MailService
from chalicelib.services.ports import Store, Tx

TEMPLATES = {
    LinkPurpose.INVITE: "inviteUserNotificationMessage",
    LinkPurpose.SIGNUP: "confirmSignUpIdentityDefault",
    LinkPurpose.RESET: "passwordResetIdentityDefault",
    LinkPurpose.EMAIL: "emailChangeIdentityDefault",
}
_PROBLEMS = {
    LinkState.EXPIRED: "This link has expired.",
    LinkState.ACCEPTED: "This link has already been used.",
    LinkState.REVOKED: "This link was revoked or replaced by a newer one.",
}


@dataclass(frozen=True)
class IssuedLink:
    """A link staged in a transaction, with its email (which the relay sends after the commit,
    with a token of its own)."""

    link: Link
    message: Message


@dataclass(frozen=True)
class InvitationView:
    """A link as the admin sees it: its state now and how its email fared."""

    link: Link
    state: LinkState
    delivery: Message | None


class InvitationService:
    """Issues, resends, revokes, lists and accepts links."""

    def __init__(
        self,
        store: Store,
        mail: MailService,
        settings: Settings,
        clock: Clock,
        hashing: HashParameters,
        *,
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._store = store
        self._mail = mail
        self._settings = settings
        self._clock = clock
        self._hashing = hashing

    def _lifetime(self, purpose: LinkPurpose) -> timedelta:
        if purpose is LinkPurpose.RESET:
            return timedelta(minutes=self._settings.reset_minutes)
        return timedelta(hours=self._settings.invitation_hours)

    def stage_issue(
        self, tx: Tx, user: User, purpose: LinkPurpose, new_email: str = "", held: bool = False
    ) -> IssuedLink:
        """A new link and its email, in the caller's transaction.

        An email change's link (``new_email``) is mailed to the new address, and bound, like
        every link, to the account's current one: another change of address kills it.
        Its token is a placeholder nobody ever learns: the relay replaces it when it mails the
        link (the raw token exists only in the memory of the process that sends it).
        """
        now = self._clock()
        _, token_hash = new_token()
        link_id = new_link_id(now)
        message = self._mail.stage(
            tx,
            TEMPLATES[purpose],
            user,
            link_ref=(user.id, link_id),
            to_email=new_email or None,
            held=held,
        )
        link = Link(
            user_id=user.id,
            link_id=link_id,
            purpose=purpose,
            state=LinkState.PENDING,
            token_hash=token_hash,
            created_at=now,
            expires_at=now + self._lifetime(purpose),
            message_id=message.id,
            email_key=user.email_key,
            new_email=new_email,
            token_epoch=user.token_epoch,
        )
        self._store.links.stage_put(tx, link)
        return IssuedLink(link, message)

    def stage_kill_pending(self, tx: Tx, user_id: str, purposes: set[LinkPurpose]) -> None:
        """Revoke every pending link of these purposes (a newer one replaces them)."""
        now = self._clock()
        for link in self._store.links.for_user(user_id, purposes):
            if link.state is LinkState.PENDING:
                self._store.links.stage_end(tx, link, LinkState.REVOKED, now)

    def stage_reissue(self, tx: Tx, user: User) -> IssuedLink:
        """A pending account's invitation (or sign-up link) again, to its current address."""
        links = self._store.links.for_user(user.id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP})
        now = self._clock()
        for link in links:
            if link.state is LinkState.PENDING:
                self._store.links.stage_end(tx, link, LinkState.REVOKED, now)
        # Newest first: the account keeps the kind of link it was last sent.
        purpose = links[0].purpose if links else LinkPurpose.INVITE
        return self.stage_issue(tx, user, purpose)

    def resend(self, user_id: str) -> InvitationView:
        """A new link with a new expiry; the old one stops working."""
        user = self._store.users.require(user_id)
        if user.state is not UserState.PENDING:
            raise StateConflict(
                f"User '{user_id}' is {user.state.value}; only pending users can be invited."
            )
        purpose = self._purpose_of(user_id)
        tx = self._store.transaction()
        self.stage_kill_pending(tx, user_id, {purpose})
        issued = self.stage_issue(tx, user, purpose)
        self._audit.stage(tx, "invitation.resent", user_target(user))
        tx.commit()
        return self._view(issued.link)

    def revoke(self, user_id: str) -> list[InvitationView]:
        """Kill the pending invitation (the account stays pending)."""
        self._store.users.require(user_id)
        pending = [
            link
            for link in self._store.links.for_user(
                user_id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP}
            )
            if link.state is LinkState.PENDING
        ]
        if not pending:
            raise StateConflict(f"User '{user_id}' has no pending invitation to revoke.")
        tx = self._store.transaction()
        for link in pending:
            self._store.links.stage_end(tx, link, LinkState.REVOKED, self._clock())
        self._audit.stage(tx, "invitation.revoked", Target("user", user_id))
        tx.commit()
        return self.list(user_id)

    def list(self, user_id: str) -> list[InvitationView]:
        """Newest first: one Query for the links, one BatchGet for their emails."""
        user = self._store.users.require(user_id)
        links = self._store.links.for_user(user_id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP})
        ids = [link.message_id for link in links if link.message_id]
        messages = self._store.outbox.get_many(ids) if ids else {}
        now = self._clock()
        return [
            InvitationView(link, _shown_state(link, user, now), messages.get(link.message_id or ""))
            for link in links
        ]

    def newest_of(self, users: Sequence[User]) -> dict[str, InvitationView | None]:
        """Each account's newest invitation or sign-up link, for a list of pending users: one
        Query per account reading its newest link (no email delivery: that is the user's page)."""
        now = self._clock()
        newest: dict[str, InvitationView | None] = {}
        for user in users:
            links = self._store.links.for_user(user.id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP}, 1)
            newest[user.id] = (
                InvitationView(links[0], _shown_state(links[0], user, now), None) if links else None
            )
        return newest

    def _view(self, link: Link) -> InvitationView:
        return InvitationView(link, link.state_at(self._clock()), None)

    def _purpose_of(self, user_id: str) -> LinkPurpose:
        links = self._store.links.for_user(user_id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP}, 1)
        return links[0].purpose if links else LinkPurpose.INVITE

    def open(
        self, token: str, purpose: LinkPurpose, user_state: UserState = UserState.PENDING
    ) -> tuple[Link, User]:
        """What a link's page shows; reading never consumes the token.

        A token that names its link is one request (the link and its account by key); an older,
        opaque one is found through the token index, then its account is read.
        """
        named = link_named_by(token) if token else None
        user: User | None
        if named is not None:
            link, user = self._store.links.with_user(*named)
            if link is not None and not same_token(link, token):
                link = None
        else:
            link = self._store.links.find_by_token(hash_token(token)) if token else None
            user = None
        if link is None or link.purpose is not purpose:
            raise UnknownLink("This link is not valid. Check that you copied all of it.")
        state = link.state_at(self._clock())
        if state is not LinkState.PENDING:
            raise LinkUnusable(_PROBLEMS[state], state.value)
        if named is None:
            user = self._store.users.get(link.user_id)
        if user is None or user.state is not user_state or not link.applies_to(user):
            raise LinkUnusable("This link no longer applies to an account.", "revoked")
        return link, user

    def accept(self, token: str, password: str | None) -> User:
        """Set the password, activate the account, consume the token: exactly once."""
        link, user = self.open(token, LinkPurpose.INVITE)
        password = checked_password(password, user)
        return self._activate(link, user, hash_password(password, self._hashing))

    def confirm_signup(self, link: Link, user: User) -> User:
        """Activate a self-registered account, from its opened link, once whoever follows the
        link has given the password chosen at sign-up (SessionService.confirm_sign_up checks it).

        Only if the account is still as read: a sign-up again in between (another password, a
        newer link) makes this fail instead of activating a password nobody here gave.
        """
        return self._activate(link, user, user.password_hash)

    def _activate(self, link: Link, user: User, password_hash: str | None) -> User:
        now = self._clock()
        active = replace(
            user,
            state=UserState.ACTIVE,
            password_hash=password_hash,
            version=next_version(user.version, now),
        )
        used = LinkUnusable(_PROBLEMS[LinkState.ACCEPTED], LinkState.ACCEPTED.value)
        tx = self._store.transaction()
        self._store.links.stage_end(tx, link, LinkState.ACCEPTED, now)
        self._store.users.stage_replace(tx, user, active, on_fail=lambda: used)
        self._mail.stage(tx, WELCOME, active)
        action = "invitation.accepted" if link.purpose is LinkPurpose.INVITE else "signup.confirmed"
        changes = diff(user_fields(user), user_fields(active))
        self._audit.stage(tx, action, user_target(active), changes, by_user=user.id)
        tx.commit()
        return active


def _shown_state(link: Link, user: User, now: datetime) -> LinkState:
    """A pending link that no longer applies (the address changed) is shown as revoked."""
    state = link.state_at(now)
    if state is LinkState.PENDING and not link.applies_to(user):
        return LinkState.REVOKED
    return state
