"""Publisher notifications as emails: `stage(tx, name, developer, ...)`, and BCC copies.

How a service sends one (at merge, services/subscriptions.py and services/accounts.py)::

    services().notifications.stage(
        tx, NotificationName.REQUEST, developer, product=product, subscription=sub
    )

in the transaction of the change that causes it, before ``tx.commit()``. It stages one outbox
message per recipient (each recipient user's current address, then each plain address; one
email per address) with the notification's email (templates/email/<NotificationName>.*), and
returns them. ``REQUEST`` and ``PURCHASE`` want the product and the subscription,
``ACCOUNT_CLOSED`` only the developer (read before the delete). Notifications about features this
service does not have (applications, issues, quota) stage nothing; ``BCC`` is not staged by
anyone: the relay calls ``bcc_copies`` after each developer email it sent.

Cost: one Query of the notification's recipients and one BatchGet of its users (none when it
has no recipient); at most MAX_RECIPIENTS writes join the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock
from chalicelib.domain.links import LINK_PATHS, Link
from chalicelib.domain.messages import LEASE, Delivery, Message, new_message_id
from chalicelib.domain.portal import SENT_NOTIFICATIONS, NotificationName, RecipientKind
from chalicelib.domain.subscriptions import Product, Subscription
from chalicelib.domain.users import User, email_key
from chalicelib.services.ports import Store, Tx

# What a BCC copy says instead of a one-time link: only the developer may hold the token (a copy
# holding it would let its reader accept the invitation or reset the password).
WITHHELD = "withheld-in-copies"


def _day(subscription: Subscription) -> str:
    moment = subscription.start_date or subscription.created_date
    return moment.strftime("%Y-%m-%d")


class NotificationService:
    """Stages publisher notifications' emails; makes the BCC copies of developer emails."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def addresses(self, name: NotificationName) -> list[tuple[str, str | None]]:
        """The notification's recipients as (address, user id or None), one per address:
        users (those that still exist) first, then plain addresses."""
        recipients = self._store.portal.recipients(name)
        user_ids = [r.value for r in recipients if r.kind is RecipientKind.USER]
        users = self._store.users.get_many(user_ids) if user_ids else {}
        found: dict[str, tuple[str, str | None]] = {}
        for r in recipients:
            if r.kind is RecipientKind.USER:
                user = users.get(r.value)
                if user is not None:
                    found.setdefault(user.email_key, (user.email, user.id))
        for r in recipients:
            if r.kind is RecipientKind.EMAIL:
                found.setdefault(email_key(r.value), (r.value, None))
        return list(found.values())

    def values(
        self,
        developer: User,
        product: Product | None = None,
        subscription: Subscription | None = None,
    ) -> dict[str, str]:
        """What the notification's email says about the developer, product and subscription."""
        values = {
            "OrganizationName": self._settings.organization_name,
            "DevPortalUrl": self._settings.portal_url,
            "DevFirstName": developer.first_name,
            "DevLastName": developer.last_name,
            "DevEmail": developer.email,
        }
        if product is not None:
            values.update(ProdId=product.id, ProdName=product.display_name)
        if subscription is not None:
            values.update(
                SubId=subscription.id,
                SubName=subscription.display_name,
                SubStartDate=_day(subscription),
            )
            values.setdefault("ProdId", subscription.product_id or "")
            values.setdefault("ProdName", subscription.product_id or "")
        return values

    def stage(
        self,
        tx: Tx,
        name: NotificationName,
        developer: User,
        *,
        product: Product | None = None,
        subscription: Subscription | None = None,
    ) -> list[Message]:
        """One outbox message per recipient address, in ``tx``; see the module's docstring."""
        if name not in SENT_NOTIFICATIONS:
            return []
        now = self._clock()
        values = self.values(developer, product, subscription)
        staged = []
        for address, user_id in self.addresses(name):
            message = Message(
                id=new_message_id(),
                template=name.value,
                to_email=address,
                # The relay reads the message's user; a plain address has none, so the developer
                # the notification is about stands in (a publisher message is not checked
                # against it).
                user_id=user_id or developer.id,
                values=values,
                created_at=now,
                next_attempt_at=now + LEASE,
                publisher=True,
            )
            self._store.outbox.stage_put(tx, message)
            staged.append(message)
        return staged

    def bcc_addresses(self) -> list[str]:
        """The BCC recipients' addresses (the relay reads them once a batch)."""
        return [a for a, _ in self.addresses(NotificationName.BCC)]

    def bcc_copies(
        self, message: Message, link: Link | None, targets: Sequence[str]
    ) -> list[Message]:
        """Stage and commit a copy of a developer email, sent, for each of ``targets``.

        Each copy's id is derived from the original's and the address, and written only if
        absent, so a copy exists at most once whoever asks twice. A one-time link is withheld
        (WITHHELD instead of its token); the copies are publisher messages, never copied again.
        """
        if message.publisher or not targets:
            return []
        values = dict(message.values)
        if link is not None:
            values.update(
                ConfirmUrl=f"{self._settings.portal_url}{LINK_PATHS[link.purpose]}?token={WITHHELD}",
                ConfirmQuery=f"token={WITHHELD}",
                ExpiresAt=link.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
        now = self._clock()
        copies = []
        tx = self._store.transaction()
        for address in targets:
            if email_key(address) == email_key(message.to_email):
                continue  # the developer already has the original
            digest = hashlib.sha256(email_key(address).encode("utf-8")).hexdigest()[:16]
            copy = replace(
                message,
                id=f"{message.id}-bcc-{digest}",
                to_email=address,
                values=values,
                link=None,
                created_at=now,
                next_attempt_at=now + LEASE,
                state=Delivery.QUEUED,
                attempts=0,
                sent_at=None,
                last_error=None,
                publisher=True,
            )
            self._store.outbox.stage_put(tx, copy)
            copies.append(copy)
        tx.commit()
        return copies
