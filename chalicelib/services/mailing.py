"""Emails through the outbox: recorded in the transaction of the change that causes them.

Nothing here renders or sends: the relay (services/relay.py), triggered by the outbox table's
stream, does, and the sweep retries what it could not send.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock
from chalicelib.domain.messages import LEASE, Message, new_message_id
from chalicelib.domain.users import User
from chalicelib.services.ports import Store, Tx


class MailService:
    """Queues messages in the caller's transaction."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def common_values(self, user: User) -> dict[str, str]:
        portal = self._settings.portal_url
        return {
            "OrganizationName": self._settings.organization_name,
            "DevFirstName": user.first_name,
            "DevLastName": user.last_name,
            "DevEmail": user.email,
            "DevUsername": user.email,
            "DevPortalUrl": portal,
            "DevPortalHost": urlsplit(portal).netloc,
            "IdentityProvider": "Basic",
        }

    def stage(
        self,
        tx: Tx,
        template: str,
        user: User,
        link_ref: tuple[str, str] | None = None,
        extra: dict[str, str] | None = None,
        to_email: str | None = None,
        held: bool = False,
    ) -> Message:
        """Record a message in the transaction of the change that causes it.

        It is written queued and unclaimed (no attempt yet): the relay, which the table's stream
        triggers with this very item, claims and sends it. The sweep takes it only if the relay
        has not claimed it within the lease (a lost stream batch, a relay that failed for good).
        ``to_email`` is for the one email that goes elsewhere than the account's address: the
        confirmation of an email change, to the new address. A ``held`` message is sent by the
        process that records it (``OutboxRelay.send_now``), never by the stream's relay.
        """
        now = self._clock()
        message = Message(
            id=new_message_id(),
            template=template,
            to_email=to_email or user.email,
            user_id=user.id,
            values={**self.common_values(user), **(extra or {})},
            created_at=now,
            next_attempt_at=now + LEASE,
            link=link_ref,
            held=held,
        )
        self._store.outbox.stage_put(tx, message)
        return message
