"""Emails through the outbox: recorded with the change, sent at once, retried by the sweep."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock
from chalicelib.domain.links import LINK_PATHS, Link, LinkState, new_token
from chalicelib.domain.messages import MAX_ATTEMPTS, Delivery, Message, new_message_id, retry_delay
from chalicelib.domain.users import User, email_key
from chalicelib.errors import LinkUnusable
from chalicelib.logs import logger
from chalicelib.services.committed import after_commit
from chalicelib.services.ports import MailerFactory, Store, TemplateSource, Tx

log = logger()

# A claimed message is not retried by another sweep for this long.
_LEASE = timedelta(minutes=2)


@dataclass
class RetryReport:
    """What one pass over the due messages did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0


class MailService:
    """Queues messages in the caller's transaction and delivers them."""

    def __init__(
        self,
        store: Store,
        templates: TemplateSource,
        mailer: MailerFactory,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._templates = templates
        self._mailer = mailer
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
    ) -> Message:
        """Record a message in the transaction of the change that causes it.

        It is written already claimed for its first attempt (``deliver`` right after the commit),
        which saves a write per email; if that attempt never happens, the sweep takes the
        message once the claim lapses."""
        now = self._clock()
        message = Message(
            id=new_message_id(),
            template=template,
            to_email=user.email,
            user_id=user.id,
            values={**self.common_values(user), **(extra or {})},
            created_at=now,
            next_attempt_at=now + _LEASE,
            link=link_ref,
            attempts=1,
        )
        self._store.outbox.stage_put(tx, message)
        return message

    def link_values(self, link: Link, token: str) -> dict[str, str]:
        """What a link-bearing template needs; built at send time, never stored."""
        query = f"token={token}"
        return {
            "ConfirmUrl": f"{self._settings.portal_url}{LINK_PATHS[link.purpose]}?{query}",
            "ConfirmQuery": query,
            "ExpiresAt": link.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }

    def deliver(
        self, message: Message, link: Link | None = None, token: str | None = None
    ) -> Delivery:
        """Send a message just staged (its first attempt is claimed already); on failure it
        stays queued for the sweep, whatever failed (the change that caused it is committed)."""
        outcome: list[Delivery] = []
        after_commit(lambda: outcome.append(self._attempt(message, link, token)), "an email")
        return outcome[0] if outcome else Delivery.QUEUED

    def _attempt(self, message: Message, link: Link | None, token: str | None) -> Delivery:
        from chalicelib.mail.render import TemplateError, render
        from chalicelib.mail.sender import MailFailed, OutgoingEmail

        values = dict(message.values)
        if link is not None and token is not None:
            values.update(self.link_values(link, token))
        now = self._clock()
        try:
            rendered = render(self._templates(message.template), values)
            self._mailer().send(
                OutgoingEmail(message.to_email, rendered.subject, rendered.html, rendered.text)
            )
        except (MailFailed, TemplateError) as exc:
            retryable = isinstance(exc, MailFailed) and exc.retryable
            error = f"{type(exc).__name__}: {exc}"
            log.warning("mail not sent: %s (attempt %d)", error, message.attempts)
            if message.attempts >= MAX_ATTEMPTS or (not retryable and message.attempts >= 3):
                self._store.outbox.mark_ended(message, Delivery.FAILED, error, now)
                return Delivery.FAILED
            self._store.outbox.mark_retry(message, error, now + retry_delay(message.attempts))
            return Delivery.QUEUED
        self._store.outbox.mark_sent(message, now)
        return Delivery.SENT

    def retry_due(self, limit: int) -> RetryReport:
        """Send what is due; a link whose email never went out gets a fresh token first."""
        report = RetryReport()
        now = self._clock()
        due = list(self._store.outbox.due(now, limit))
        # One BatchGet: a message goes only to the address its account still has.
        users = self._store.users.get_many({m.user_id for m in due}) if due else {}
        for message in due:
            user = users.get(message.user_id)
            if user is None or user.email_key != email_key(message.to_email):
                self._store.outbox.mark_ended(
                    message, Delivery.CANCELLED, "The address changed before it was sent.", now
                )
                report.cancelled += 1
                continue
            link, token = None, None
            if message.link is not None:
                link = self._store.links.get(*message.link)
                if (
                    link is None
                    or link.state_at(now) is not LinkState.PENDING
                    or not link.applies_to(user)
                ):
                    self._store.outbox.mark_ended(
                        message, Delivery.CANCELLED, "The link ended before it was sent.", now
                    )
                    report.cancelled += 1
                    continue
            if not self._store.outbox.claim(message, now + _LEASE):
                continue
            message = replace(message, attempts=message.attempts + 1)
            if link is not None:
                # The raw token is never stored, so the unsent one is replaced by a new one.
                token, token_hash = new_token()
                tx = self._store.transaction()
                self._store.links.stage_rotate(tx, link, token_hash)
                try:
                    tx.commit()
                except LinkUnusable:
                    continue  # it ended meanwhile; the next pass cancels the message
                link = replace(link, token_hash=token_hash)
            outcome = self._attempt(message, link, token)
            if outcome is Delivery.SENT:
                report.sent += 1
            elif outcome is Delivery.FAILED:
                report.failed += 1
            else:
                report.retried += 1
        return report
