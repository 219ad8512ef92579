"""The audit repository: events under their target's stream, and by month for the whole trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

from chalicelib.domain.audit import AuditEvent
from chalicelib.domain.tx import Tx
from chalicelib.store.models import AuditItem
from chalicelib.store.tx import dynamodb_errors, writes


def _to_event(item: AuditItem) -> AuditEvent:
    return AuditEvent(
        id=item.event_id,
        time=item.time,
        action=item.action,
        actor=item.actor,
        actor_kind=item.actor_kind,
        address=item.address or "",
        request_id=item.request_id or "",
        target_type=item.target_type,
        target_id=item.target_id,
        target_email=item.target_email,
        changes=json.loads(item.changes) if item.changes else {},
    )


class AuditRepository:
    """Events are written in the transaction of their change; reads are newest first."""

    def __init__(self, retention: timedelta) -> None:
        self._retention = retention

    def _item(self, event: AuditEvent) -> AuditItem:
        return AuditItem(
            stream=event.stream,
            event_id=event.id,
            month=event.time.strftime("%Y-%m"),
            time=event.time,
            action=event.action,
            actor=event.actor,
            actor_kind=event.actor_kind,
            address=event.address or None,
            request_id=event.request_id or None,
            target_type=event.target_type,
            target_id=event.target_id,
            target_email=event.target_email,
            changes=json.dumps(event.changes, default=str) if event.changes else None,
            purge_at=event.time + self._retention,
        )

    def stage_put(self, tx: Tx, event: AuditEvent) -> None:
        writes(tx).put(self._item(event), None, None)

    def put(self, event: AuditEvent) -> None:
        """For events without a change (a failed sign-in): written on their own."""
        with dynamodb_errors():
            self._item(event).save()

    def stream(
        self, stream: str, before: str | None, budget: int, page_size: int
    ) -> Iterator[AuditEvent]:
        condition = AuditItem.event_id < before if before is not None else None
        with dynamodb_errors():
            for item in AuditItem.query(
                stream,
                condition,
                scan_index_forward=False,
                limit=budget,
                page_size=page_size,
                consistent_read=True,
            ):
                yield _to_event(item)

    def month(
        self, month: str, before: str | None, budget: int, page_size: int
    ) -> Iterator[AuditEvent]:
        condition = AuditItem.event_id < before if before is not None else None
        with dynamodb_errors():
            for item in AuditItem.by_month.query(
                month, condition, scan_index_forward=False, limit=budget, page_size=page_size
            ):
                yield _to_event(item)
