"""The outbox repository: queued emails, found by their next attempt through a sparse index,
and announced to the relay by the table's stream."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.messages import Delivery, Message, MessageTaken
from chalicelib.domain.tx import Tx
from chalicelib.store.models import OutboxItem
from chalicelib.store.tx import dynamodb_errors, is_condition_failure, writes

DUE = "queued"
_KEEP_AFTER_END = timedelta(days=30)


def _to_message(item: OutboxItem) -> Message:
    link = (item.link_user_id, item.link_id) if item.link_user_id and item.link_id else None
    return Message(
        id=item.message_id,
        template=item.template,
        to_email=item.to_email,
        user_id=item.user_id,
        values={k: str(v) for k, v in (item.values.as_dict() if item.values else {}).items()},
        created_at=item.created_at,
        next_attempt_at=item.next_attempt_at,
        link=link,
        state=Delivery(item.state),
        attempts=int(item.attempts or 0),
        sent_at=item.sent_at,
        last_error=item.last_error,
        publisher=bool(item.publisher),
        held=bool(item.held),
    )


def _to_item(message: Message) -> OutboxItem:
    return OutboxItem(
        message_id=message.id,
        template=message.template,
        to_email=message.to_email,
        user_id=message.user_id,
        values=message.values,
        link_user_id=message.link[0] if message.link else None,
        link_id=message.link[1] if message.link else None,
        state=message.state.value,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at,
        created_at=message.created_at,
        due=DUE if message.state is Delivery.QUEUED else None,
        publisher=message.publisher or None,
        held=message.held or None,
    )


def _unchanged(message: Message) -> Any:
    """Still queued, with the attempts this sender saw (a claim adds one)."""
    return (OutboxItem.state == Delivery.QUEUED.value) & (OutboxItem.attempts == message.attempts)


class OutboxRepository:
    """Every state change is conditional on the attempt count, so two senders never both win."""

    def stage_put(self, tx: Tx, message: Message) -> None:
        writes(tx).put(_to_item(message), OutboxItem.message_id.does_not_exist(), None)

    def get(self, message_id: str) -> Message | None:
        with dynamodb_errors():
            try:
                return _to_message(OutboxItem.get(message_id, consistent_read=True))
            except OutboxItem.DoesNotExist:
                return None

    def get_many(self, message_ids: list[str]) -> dict[str, Message]:
        """One BatchGetItem for up to 100 ids."""
        with dynamodb_errors():
            return {i.message_id: _to_message(i) for i in OutboxItem.batch_get(message_ids)}

    def _update(self, message: Message, actions: list[Any]) -> bool:
        try:
            with dynamodb_errors():
                OutboxItem(message_id=message.id).update(
                    actions=actions, condition=_unchanged(message)
                )
        except PynamoDBException as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def stage_claim(self, tx: Tx, message: Message, until: datetime) -> None:
        """Take a queued message for one attempt, in ``tx``: only if it is still queued with the
        attempts this sender saw, so of two senders (relay, sweep) only one ever sends it.
        The commit raises MessageTaken when another sender was first."""
        writes(tx).update(
            OutboxItem(message_id=message.id),
            [OutboxItem.attempts.add(1), OutboxItem.next_attempt_at.set(until)],
            _unchanged(message),
            lambda: MessageTaken(f"message {message.id} was claimed by another sender"),
        )

    def message_in(self, record: Mapping[str, Any]) -> Message | None:
        """The new message a stream record announces (an INSERT's new image), else None.

        The same for a Lambda event's record and for one read through the Streams API: both
        carry the image as DynamoDB's typed JSON.
        """
        if record.get("eventName") != "INSERT":
            return None
        image = (record.get("dynamodb") or {}).get("NewImage")
        if not image:
            return None
        return _to_message(OutboxItem.from_raw_data(dict(image)))

    def mark_sent(self, message: Message, now: datetime) -> bool:
        return self._update(
            message,
            [
                OutboxItem.state.set(Delivery.SENT.value),
                OutboxItem.sent_at.set(now),
                OutboxItem.last_error.remove(),
                OutboxItem.due.remove(),
                OutboxItem.purge_at.set(now + _KEEP_AFTER_END),
            ],
        )

    def mark_retry(self, message: Message, error: str, at: datetime) -> bool:
        return self._update(
            message,
            [OutboxItem.last_error.set(error[:500]), OutboxItem.next_attempt_at.set(at)],
        )

    def mark_ended(self, message: Message, state: Delivery, error: str, now: datetime) -> bool:
        """Failed for good, or cancelled: leaves the due index."""
        return self._update(
            message,
            [
                OutboxItem.state.set(state.value),
                OutboxItem.last_error.set(error[:500]),
                OutboxItem.due.remove(),
                OutboxItem.purge_at.set(now + _KEEP_AFTER_END),
            ],
        )

    def due(self, now: datetime, limit: int) -> Iterator[Message]:
        with dynamodb_errors():
            for item in OutboxItem.due_index.query(
                DUE, OutboxItem.next_attempt_at <= now, limit=limit, page_size=min(limit, 100)
            ):
                yield _to_message(item)
