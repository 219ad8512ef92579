"""Creating, reading, changing, listing and deleting developer accounts."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.audit import diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import Expected, check_expected, next_version
from chalicelib.domain.groups import DEVELOPERS, Group
from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.domain.messages import (
    ACCOUNT_DELETED,
    CLOSED,
    PASSWORD_CHANGED,
    REGISTERED,
    WELCOME,
    Message,
)
from chalicelib.domain.paging import Page
from chalicelib.domain.passwords import HashParameters, hash_password
from chalicelib.domain.subscriptions import Subscription
from chalicelib.domain.users import (
    REVOKED_RESET,
    Confirmation,
    User,
    UserChanges,
    UserDraft,
    UserState,
    basic_identities,
    checked_password,
    email_key,
    new_token_epoch,
)
from chalicelib.errors import (
    EmailTaken,
    HasSubscriptions,
    IdTaken,
    LastAdministrator,
    LinkUnusable,
    PreconditionFailed,
    StateConflict,
)
from chalicelib.services.audit import Audit, Target, user_fields, user_target
from chalicelib.services.invitations import InvitationService
from chalicelib.services.listing import ListQuery, list_users
from chalicelib.services.mailing import MailService
from chalicelib.services.ports import Store, Tx

if TYPE_CHECKING:
    from chalicelib.services.groups import Memberships

_PURPOSES = {Confirmation.INVITE: LinkPurpose.INVITE, Confirmation.SIGNUP: LinkPurpose.SIGNUP}
# Subscriptions deleted per transaction: 4 items each plus an event; moto allows 25 items.
_SUBSCRIPTIONS_IN_TX = 4
# Links the clean-up of a deleted account revokes per transaction (a few; one account's links).
_LINKS_IN_TX = 10
_MAX_SUBSCRIPTIONS = 1000


class _MaybeAdministrator(Exception):
    """Internal: the account has an Administrators row; the full rule must decide."""


class AccountService:
    """The developer-account use cases."""

    def __init__(
        self,
        store: Store,
        invitations: InvitationService,
        mail: MailService,
        clock: Clock,
        hashing: HashParameters,
        groups: Memberships | None = None,
        *,
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._store = store
        self._users = store.users
        self._invitations = invitations
        self._mail = mail
        self._clock = clock
        self._hashing = hashing
        self._groups = groups

    def _hash(self, password: str | None) -> str | None:
        return hash_password(password, self._hashing) if password is not None else None

    def create_or_replace(
        self, user_id: str, draft: UserDraft, expected: Expected | None, notify: bool = False
    ) -> tuple[User, bool]:
        """PUT: create (True) or replace (False). Uniqueness is DynamoDB's, not a prior read."""
        password_hash = self._hash(draft.password)
        purpose = _PURPOSES.get(draft.confirmation) if draft.confirmation else None
        now = self._clock()
        if expected is None:
            fresh = self._create(user_id, draft, password_hash, purpose, notify)
            if fresh is not None:
                return fresh, True
        existing = self._users.get(user_id)
        if existing is None:
            # If-Match on an entity that does not exist cannot match (RFC 9110).
            raise PreconditionFailed(f"User '{user_id}' does not exist; If-Match cannot match.")
        check_expected(expected, existing.version)
        kept = tuple(i for i in existing.identities if i.provider.lower() != "basic")
        updated = replace(
            existing,
            email=draft.email,
            first_name=draft.first_name,
            last_name=draft.last_name,
            state=draft.state or existing.state,
            note=draft.note if draft.note_given else existing.note,
            identities=basic_identities(
                draft.email, draft.identities if draft.identities is not None else kept
            ),
            version=next_version(existing.version, now),
            password_hash=password_hash or existing.password_hash,
        )
        reinvite = purpose is not None and existing.state is UserState.PENDING
        if reinvite:
            updated = replace(updated, state=UserState.PENDING)
        return self._commit_change(existing, updated, purpose if reinvite else None), False

    def _create(
        self,
        user_id: str,
        draft: UserDraft,
        password_hash: str | None,
        purpose: LinkPurpose | None,
        notify: bool,
    ) -> User | None:
        """A new account in one transaction; None when the id is taken (EmailTaken when the
        address is)."""
        now = self._clock()
        fresh = User(
            id=user_id,
            email=draft.email,
            first_name=draft.first_name,
            last_name=draft.last_name,
            # An invited or signing-up account waits for its link, whatever state was sent.
            state=UserState.PENDING if purpose else draft.state or UserState.ACTIVE,
            note=draft.note,
            registration_date=now,
            identities=basic_identities(draft.email, draft.identities),
            version=next_version(0, now),
            password_hash=password_hash,
            token_epoch=new_token_epoch(),
        )
        tx = self._store.transaction()
        self._users.stage_create(tx, fresh)
        action = {LinkPurpose.INVITE: "user.invited", LinkPurpose.SIGNUP: "user.signed_up"}
        self._audit.stage(
            tx,
            action.get(purpose, "user.created") if purpose else "user.created",
            user_target(fresh),
            diff({}, user_fields(fresh)),
        )
        if purpose:
            self._invitations.stage_issue(tx, fresh, purpose)
        elif notify:
            self._mail.stage(tx, WELCOME, fresh)
        try:
            tx.commit()
        except IdTaken:
            return None  # the id is taken: a PUT replaces it
        return fresh

    def sign_up(self, user_id: str, draft: UserDraft) -> None:
        """A self-registered account, pending until its confirmSignUpIdentityDefault link is
        followed with its password.

        When the address already has an account that still waits for a sign-up link, the new
        password and names replace the pending ones and a fresh link replaces the old, in one
        transaction: the owner of an address someone else signed up with (or who lost the first
        email) can still sign up. Any other account (active, blocked, invited by an
        administrator) is left alone and nothing is mailed. The password is hashed once
        whatever happens, so the time taken says nothing about the address.
        """
        password_hash = self._hash(draft.password)
        try:
            if self._create(user_id, draft, password_hash, LinkPurpose.SIGNUP, False) is not None:
                return
        except EmailTaken:
            pass
        existing = self._users.find_by_email(email_key(draft.email))
        if existing is None or existing.state is not UserState.PENDING:
            return
        newest = self._store.links.for_user(
            existing.id, {LinkPurpose.INVITE, LinkPurpose.SIGNUP}, 1
        )
        if not newest or newest[0].purpose is not LinkPurpose.SIGNUP:
            return  # an administrator's invitation: theirs to resend
        now = self._clock()
        again = replace(
            existing,
            first_name=draft.first_name,
            last_name=draft.last_name,
            password_hash=password_hash,
            # A new epoch kills every link issued before, even one the revocation below missed.
            token_epoch=new_token_epoch(),
            version=next_version(existing.version, now),
        )
        tx = self._store.transaction()
        self._invitations.stage_kill_pending(tx, existing.id, {LinkPurpose.SIGNUP})
        self._invitations.stage_issue(tx, again, LinkPurpose.SIGNUP)
        # Conditional on the version read: a confirmation or another sign-up in between wins.
        self._users.stage_replace(tx, existing, again)
        self._audit.stage(
            tx,
            "user.signed_up_again",
            user_target(again),
            diff(user_fields(existing), user_fields(again)),
        )
        try:
            tx.commit()
        except (PreconditionFailed, LinkUnusable):
            pass  # changed meanwhile: the same answer, and that change's own email stands

    def get(self, user_id: str) -> User:
        return self._users.require(user_id)

    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        """The accounts that exist among these ids (BatchGetItem, 100 keys a request)."""
        return self._users.get_many(user_ids)

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        expected: Expected,
        *,
        also: Callable[[Tx], None] | None = None,
    ) -> User:
        """PATCH: change only the fields sent; ``also`` stages more in the same transaction
        (the developer's confirmed email change ends its link there)."""
        existing = self._users.require(user_id)
        expected.check(existing.version)
        email = changes.email or existing.email
        identities = changes.identities
        if identities is None:
            identities = tuple(i for i in existing.identities if i.provider.lower() != "basic")
        first_name = changes.first_name or existing.first_name
        last_name = changes.last_name or existing.last_name
        if changes.password is not None:
            # The policy refuses a password made of the names the account ends up with.
            named = replace(existing, email=email, first_name=first_name, last_name=last_name)
            checked_password(changes.password, named)
        updated = replace(
            existing,
            email=email,
            first_name=first_name,
            last_name=last_name,
            state=changes.state or existing.state,
            note=changes.note if changes.note_given else existing.note,
            identities=basic_identities(email, identities),
            version=next_version(existing.version, self._clock()),
            password_hash=self._hash(changes.password) or existing.password_hash,
        )
        return self._commit_change(existing, updated, None, also)

    def _commit_change(
        self,
        existing: User,
        wanted: User,
        reinvite: LinkPurpose | None,
        also: Callable[[Tx], None] | None = None,
    ) -> User:
        """One transaction: the account, what its change implies, the audit event, ``also``.

        An active account leaving the active state is first assumed not to be an administrator
        (checked inside the transaction); only if that check fails is the transaction built
        again with the full last-administrator rule, which reads.
        """
        for assume_not_administrator in (True, False):
            tx = self._store.transaction()
            self._stage_keep_an_administrator(tx, existing, wanted.state, assume_not_administrator)
            updated, _ = self._stage_consequences(tx, existing, wanted)
            issued = None
            if reinvite is not None:
                # Inviting a pending user again replaces the old link (expired or not).
                self._invitations.stage_kill_pending(tx, existing.id, set(_PURPOSES.values()))
                issued = self._invitations.stage_issue(tx, updated, reinvite)
            elif self._readdressed(existing, updated):
                issued = self._invitations.stage_reissue(tx, updated)
            self._users.stage_replace(tx, existing, updated)
            self._audit.stage_user_change(tx, existing, updated)
            if issued:
                self._audit.stage(tx, "invitation.resent", user_target(updated))
            if also is not None:
                also(tx)
            try:
                tx.commit()
            except _MaybeAdministrator:
                continue
            return updated
        raise AssertionError("the full rule never raises _MaybeAdministrator")

    def _stage_keep_an_administrator(
        self, tx: Tx, old: User, state: UserState | None, assume_not_administrator: bool = False
    ) -> None:
        """Refuse to leave no active administrator (a block, another state, or a delete: None).

        ``assume_not_administrator`` stages only a check that the account has no Administrators
        row (no read; the commit raises _MaybeAdministrator if it has one). Otherwise the row is
        read, and the other active administrator found is checked unchanged in the same
        transaction, so two administrators blocking each other at once cannot both succeed.
        """
        if old.state is not UserState.ACTIVE or state is UserState.ACTIVE or self._groups is None:
            return
        if assume_not_administrator:
            self._groups.stage_not_administrator(tx, old, _MaybeAdministrator)
            return
        if not self._groups.is_administrator(old):
            return
        other = self._groups.other_active_administrator(old)
        if other is None:
            raise LastAdministrator(
                f"{old.first_name} {old.last_name} is the last active administrator, so the "
                "account cannot be blocked or deleted: nobody could use the console any more. "
                "Make another administrator first (apim-users create-admin)."
            )
        self._users.stage_check(
            tx,
            other,
            lambda: StateConflict(
                "Another administrator's account changed at the same moment; try again."
            ),
        )

    @staticmethod
    def _readdressed(old: User, new: User) -> bool:
        """A pending account whose address changed: its invitation goes to the new one.

        Links and unsent emails bound to the old address die by themselves (they name it)."""
        return new.state is UserState.PENDING and new.email_key != old.email_key

    def _stage_consequences(self, tx: Tx, old: User, new: User) -> tuple[User, Message | None]:
        """What a block or a new password implies, in the same transaction as the change.

        Both end every user token and every outstanding link with a new token epoch (links
        carry the epoch of their issue), without a query of the links; activating again brings
        none of them back. No reset link may be used after either (older links carry no epoch:
        the account's reset link says so). A new password set by the admin is announced by
        email, without it.
        """
        blocked = new.state is UserState.BLOCKED and old.state is not UserState.BLOCKED
        new_password = new.password_hash != old.password_hash and new.password_hash is not None
        if not (blocked or new_password):
            return new, None
        new = replace(new, token_epoch=new_token_epoch(), reset_link=REVOKED_RESET)
        notice = self._mail.stage(tx, PASSWORD_CHANGED, new) if new_password else None
        return new, notice

    def delete(
        self,
        user_id: str,
        expected: Expected,
        notify: bool = False,
        delete_subscriptions: bool = False,
        *,
        also: Callable[[Tx], None] | None = None,
    ) -> None:
        """DELETE: the email is free again; links and memberships die with the account. ``also``
        stages more in the transaction that deletes the user (a developer closing their own
        account).

        A user with subscriptions is deleted only with ``deleteSubscriptions``: 409 otherwise,
        and nothing is removed. Without it, "owns none" is checked inside the transaction (the
        account's subscription count), so the request is one read and one transaction. Pending
        links and membership rows no longer apply to anything once the account is gone; the
        relay removes them after the commit (a task in the outbox), off the request path.
        """
        existing = self._users.require(user_id)
        expected.check(existing.version)
        subscriptions = self._store.subscriptions
        owned = (
            list(subscriptions.of_owner(user_id, None, _MAX_SUBSCRIPTIONS, 100))
            if delete_subscriptions
            else []
        )
        counted = not delete_subscriptions
        # With subscriptions to delete first, the rule is read before any of them goes.
        assume = not owned
        while True:
            try:
                self._delete(existing, notify, owned, counted, assume, also)
                return
            except _MaybeAdministrator:
                assume = False
            except HasSubscriptions:
                if not counted:
                    raise
                # No count (an account from before counts were kept), or some subscriptions:
                # the owner index decides.
                if any(True for _ in subscriptions.of_owner(user_id, None, 1, 1)):
                    raise HasSubscriptions(
                        f"User '{user_id}' has subscriptions; delete them first, "
                        "or pass deleteSubscriptions=true."
                    ) from None
                counted = False

    def _delete(
        self,
        existing: User,
        notify: bool,
        owned: builtins.list[Subscription],
        counted: bool,
        assume_not_administrator: bool,
        also: Callable[[Tx], None] | None,
    ) -> None:
        # Checked before any subscription goes; held by the transaction that deletes the user.
        tx = self._store.transaction()
        self._stage_keep_an_administrator(tx, existing, None, assume_not_administrator)
        subscriptions = self._store.subscriptions
        for start in range(0, len(owned), _SUBSCRIPTIONS_IN_TX):
            # The subscriptions go first, a few per transaction (each is 4 items and an event).
            batch = self._store.transaction()
            for sub in owned[start : start + _SUBSCRIPTIONS_IN_TX]:
                subscriptions.stage_delete(batch, sub)
                self._audit.stage(batch, "subscription.deleted", Target("subscription", sub.id))
            batch.commit()
        subscriptions.stage_forget_owner(tx, existing.id, owns_none=counted)
        self._users.stage_delete(tx, existing)
        self._audit.stage(
            tx, "user.deleted", user_target(existing), diff(user_fields(existing), {})
        )
        if notify:
            self._mail.stage(tx, CLOSED, existing)
        registered = existing.registration_date.isoformat()
        self._mail.stage(tx, ACCOUNT_DELETED, existing, extra={REGISTERED: registered})
        if also is not None:
            also(tx)
        tx.commit()

    def clean_up_deleted(self, user_id: str, registered: datetime, deleted: datetime) -> None:
        """What a deleted account leaves (the relay's task): its pending links end, its
        membership rows go. Idempotent; rows of a later account with the same id stay."""
        links = self._store.links.for_user(user_id, set(LinkPurpose))
        stale = [
            link for link in links if link.state is LinkState.PENDING and link.created_at <= deleted
        ]
        for start in range(0, len(stale), _LINKS_IN_TX):
            tx = self._store.transaction()
            for link in stale[start : start + _LINKS_IN_TX]:
                self._store.links.stage_end(tx, link, LinkState.REVOKED, self._clock())
            try:
                tx.commit()
            except LinkUnusable:
                continue  # one of them ended meanwhile; the sweep expires any left
        if self._groups is not None:
            self._groups.leave_all(user_id, registered)

    def list(self, query: ListQuery) -> Page[User]:
        return list_users(self._users, query)

    def groups_of(self, user_id: str) -> builtins.list[Group]:
        """Developers (every account is in it) and the account's custom groups, in id order."""
        user = self._users.require(user_id)
        return self._groups.groups_of(user) if self._groups else [DEVELOPERS]

    def fill_order_keys(self) -> int:
        """Give accounts stored before the sorted lists existed their sort keys (a one-off after
        an upgrade: ``apim-users fill-order-keys``); the number of accounts given them."""
        return self._users.fill_order_keys()
