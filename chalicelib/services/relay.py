"""The outbox relay: renders and sends each recorded email once, at SES's send rate.

Two callers share it. The ``outbox_relay`` function hands it each batch of the outbox table's
stream (new messages, seconds after their request committed); the scheduled sweep hands it the
messages that are due again (a failed attempt, or one the relay never claimed).

**Claim protocol.** A message is sent only by whoever claims its next attempt: a conditional
update "still queued, with the attempts I saw; attempts + 1, leased for 2 minutes". The relay
claims with the attempts of the stream's image (0), the sweep with those it read from the index,
so a relay and a sweep racing on one message (or a stream batch delivered twice) send it once.
Whatever happens after a successful send (recording it) is conditional on the claimed attempt.

**Links.** Only a token's SHA-256 is stored, so the relay mints the token when it sends: in the
claim's own transaction it replaces the link's token hash (only if the link is still pending with
the hash it read), and the raw token lives only in this process's memory until SES has it.
Whatever token the request made is never mailed, so nobody can have seen it.

**BCC.** Once a developer email is recorded sent, its copies for the ``BCC`` notification's
recipients are staged in the outbox (services/notifications.py: ``bcc_copies``), each at most
once, and go out like any message; a copy withholds a one-time link's token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock
from chalicelib.domain.links import LINK_PATHS, Link, LinkState, new_link_token
from chalicelib.domain.messages import (
    ACCOUNT_DELETED,
    CLOSED,
    LEASE,
    MAX_ATTEMPTS,
    REGISTERED,
    Delivery,
    Message,
    MessageTaken,
    retry_delay,
)
from chalicelib.domain.users import User, email_key
from chalicelib.errors import LinkUnusable
from chalicelib.logs import logger
from chalicelib.services.ports import MailerFactory, Pacer, Store, TemplateSource

log = logger()


# The BCC copies of a developer email just sent (services/notifications.py: NotificationService).
class BccCopier(Protocol):
    """The BCC recipients' addresses, and staging a sent email's copies to them."""

    def bcc_addresses(self) -> list[str]: ...

    def bcc_copies(
        self, message: Message, link: Link | None, targets: Sequence[str]
    ) -> Sequence[Message]: ...


# Times SES may say "too fast" to one attempt before it is left for the sweep's retry.
THROTTLE_RETRIES = 4
# A stream batch stops taking new messages this many seconds before its function times out
# (or a quarter of the time it had, if that is less).
_SAFETY_SECONDS = 30.0


@dataclass
class RelayReport:
    """What one batch did: sent, left queued for a retry, failed for good, cancelled, or left
    to another sender that claimed it first."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    taken: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "taken": self.taken,
        }


@dataclass
class StreamOutcome:
    """A stream batch's report, and the records it did not handle (their sequence numbers),
    which the event source mapping hands over again."""

    report: RelayReport
    unhandled: list[str] = field(default_factory=list)


class OutboxRelay:
    """Sends queued messages: claim, mint the link, render, send at the rate, record."""

    def __init__(
        self,
        store: Store,
        templates: TemplateSource,
        mailer: MailerFactory,
        pacer: Pacer,
        settings: Settings,
        clock: Clock,
        *,
        bcc: BccCopier | None = None,
        clean_up: Callable[[str, datetime, datetime], None] | None = None,
    ) -> None:
        self._bcc = bcc
        self._clean_up = clean_up
        self._store = store
        self._templates = templates
        # Templates read in the current batch: one read per template a batch, not per email (an
        # admin's change applies from the next batch, seconds later).
        self._batch_templates: dict[str, Any] = {}
        # The BCC recipients, read once a batch (None: not read yet in this batch).
        self._batch_bcc: list[str] | None = None
        self._mailer = mailer
        self._pacer = pacer
        self._settings = settings
        self._clock = clock

    def handle_records(
        self,
        records: Sequence[Mapping[str, Any]],
        time_left: Callable[[], float] | None = None,
    ) -> StreamOutcome:
        """One batch of the outbox stream: each new message, in order.

        Records other than a new message (the claims and sends it causes) are skipped. When a
        message cannot be handled (DynamoDB unavailable), it and the rest are returned for the
        event source mapping to try again; the claims make a second delivery harmless.
        """
        found: list[tuple[str, Message]] = []
        for record in records:
            message = self._store.outbox.message_in(record)
            # A held message is its recorder's to send (send_now), or the sweep's after its lease.
            if message is not None and not message.held:
                found.append((str((record.get("dynamodb") or {}).get("SequenceNumber")), message))
        report = RelayReport()
        self._new_batch()
        if not found:
            return StreamOutcome(report)
        users = self._users_of([m for _, m in found])
        margin = min(_SAFETY_SECONDS, time_left() / 4) if time_left is not None else 0.0
        for n, (_, message) in enumerate(found):
            if time_left is not None and time_left() < margin:
                return StreamOutcome(report, [sequence for sequence, _ in found[n:]])
            try:
                self._send_one(message, users.get(message.user_id), report)
            except Exception:
                log.exception("relay: message %s not handled; the batch resumes there", message.id)
                return StreamOutcome(report, [sequence for sequence, _ in found[n:]])
        return StreamOutcome(report)

    def _new_batch(self) -> None:
        self._batch_templates = {}
        self._batch_bcc = None

    def retry_due(self, limit: int) -> RelayReport:
        """The sweep's part: every message whose next attempt is due (a failed attempt, a
        lapsed claim, or a message the relay never claimed)."""
        due = list(self._store.outbox.due(self._clock(), limit))
        report = RelayReport()
        self._new_batch()
        users = self._users_of(due)
        for message in due:
            self._send_one(message, users.get(message.user_id), report)
        return report

    def send_now(self, message_id: str) -> RelayReport:
        """One message by id, in this process (``apim-users create-admin`` prints its link)."""
        report = RelayReport()
        self._new_batch()
        message = self._store.outbox.get(message_id)
        if message is not None:
            self._send_one(message, self._store.users.get(message.user_id), report)
        return report

    def _users_of(self, messages: Sequence[Message]) -> dict[str, User]:
        # One BatchGet: a message goes only to the address its account still has.
        ids = {m.user_id for m in messages}
        return self._store.users.get_many(ids) if ids else {}

    def _send_one(self, message: Message, user: User | None, report: RelayReport) -> None:
        if message.state is not Delivery.QUEUED:
            return
        now = self._clock()
        outbox = self._store.outbox
        if message.template == ACCOUNT_DELETED:
            self._run_task(message, report)
            return
        link = self._store.links.get(*message.link) if message.link is not None else None
        if (
            not message.publisher
            and message.template != CLOSED
            and (user is None or user.email_key != email_key(_bound_address(message, link)))
        ):
            # The farewell goes to the address of the account that was deleted; an email
            # change's confirmation to the new address, while the account still has the one
            # its link was bound to; anything else only to the address its account still has.
            if outbox.mark_ended(
                message, Delivery.CANCELLED, "The address changed before it was sent.", now
            ):
                report.cancelled += 1
            return
        if message.link is not None:
            if (
                user is None
                or link is None
                or link.state_at(now) is not LinkState.PENDING
                or not link.applies_to(user)
            ):
                if outbox.mark_ended(
                    message, Delivery.CANCELLED, "The link ended before it was sent.", now
                ):
                    report.cancelled += 1
                return
        tx = self._store.transaction()
        outbox.stage_claim(tx, message, now + LEASE)
        token = None
        if link is not None:
            # The token is made here and now; its hash replaces the one the link had.
            token, token_hash = new_link_token(link.user_id, link.link_id)
            self._store.links.stage_rotate(tx, link, token_hash)
            link = replace(link, token_hash=token_hash)
        try:
            tx.commit()
        except MessageTaken:
            report.taken += 1  # the relay or the sweep has it: it sends, not us
            return
        except LinkUnusable:
            # Accepted, revoked or expired since it was read; the claim did not happen either.
            if outbox.mark_ended(
                message, Delivery.CANCELLED, "The link ended before it was sent.", now
            ):
                report.cancelled += 1
            return
        message = replace(message, attempts=message.attempts + 1)
        outcome = self._attempt(message, link, token)
        if outcome is Delivery.SENT:
            report.sent += 1
        elif outcome is Delivery.FAILED:
            report.failed += 1
        else:
            report.retried += 1

    def _run_task(self, message: Message, report: RelayReport) -> None:
        """A deleted account's clean-up (idempotent: a relay and a sweep may both run it)."""
        if self._clean_up is not None:
            registered = datetime.fromisoformat(message.values[REGISTERED])
            self._clean_up(message.user_id, registered, message.created_at)
        if self._store.outbox.mark_sent(message, self._clock()):
            report.sent += 1

    def link_values(self, link: Link, token: str) -> dict[str, str]:
        """What a link-bearing template needs; built at send time, never stored."""
        query = f"token={token}"
        return {
            "ConfirmUrl": f"{self._settings.portal_url}{LINK_PATHS[link.purpose]}?{query}",
            "ConfirmQuery": query,
            "ExpiresAt": link.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }

    def _attempt(self, message: Message, link: Link | None, token: str | None) -> Delivery:
        """The claimed attempt: render, send at the rate, record the outcome."""
        from chalicelib.mail.render import TemplateError, render
        from chalicelib.mail.sender import MailFailed, OutgoingEmail

        values = dict(message.values)
        if link is not None and token is not None:
            values.update(self.link_values(link, token))
        try:
            template = self._batch_templates.get(message.template)
            if template is None:
                template = self._batch_templates[message.template] = self._templates(
                    message.template
                )
            rendered = render(template, values)
            self._send_paced(
                OutgoingEmail(message.to_email, rendered.subject, rendered.html, rendered.text)
            )
        except (MailFailed, TemplateError) as exc:
            now = self._clock()
            retryable = isinstance(exc, MailFailed) and exc.retryable
            error = f"{type(exc).__name__}: {exc}"
            log.warning("mail not sent: %s (attempt %d)", error, message.attempts)
            if message.attempts >= MAX_ATTEMPTS or (not retryable and message.attempts >= 3):
                self._store.outbox.mark_ended(message, Delivery.FAILED, error, now)
                return Delivery.FAILED
            self._store.outbox.mark_retry(message, error, now + retry_delay(message.attempts))
            return Delivery.QUEUED
        if self._store.outbox.mark_sent(message, self._clock()):
            self._copy(message, link)
        return Delivery.SENT

    def _copy(self, message: Message, link: Link | None) -> None:
        """The BCC copies of a developer email, once it is recorded sent (only the sender whose
        claim recorded it gets here, so they are staged once). The email itself went out: a
        failure here loses its copies, never the email or the batch."""
        if self._bcc is None or message.publisher:
            return
        try:
            if self._batch_bcc is None:
                self._batch_bcc = self._bcc.bcc_addresses()
            if self._batch_bcc:
                self._bcc.bcc_copies(message, link, self._batch_bcc)
        except Exception:
            log.exception("relay: the BCC copies of message %s were not staged", message.id)

    def _send_paced(self, email: Any) -> None:
        """Send when the pacer allows; "too fast" from SES is retried here, within seconds."""
        from chalicelib.mail.sender import MailFailed

        mailer = self._mailer()
        for retry in range(THROTTLE_RETRIES + 1):
            self._pacer.wait()
            try:
                mailer.send(email)
                return
            except MailFailed as exc:
                if not exc.throttled or retry == THROTTLE_RETRIES:
                    raise
                log.info("SES throttled a send; trying again in seconds (retry %d)", retry + 1)
                self._pacer.throttled(retry)


def _bound_address(message: Message, link: Link | None) -> str:
    """The address the account must still have for this message to go out."""
    if (
        link is not None
        and link.new_email
        and email_key(link.new_email) == email_key(message.to_email)
    ):
        return link.email_key
    return message.to_email
