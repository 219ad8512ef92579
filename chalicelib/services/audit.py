"""The audit trail: events staged in the transaction of their change, and the queries on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import context
from chalicelib.domain.audit import AuditEvent, diff, new_event_id
from chalicelib.domain.clock import Clock
from chalicelib.domain.odata import ALL_FUNCTIONS, ALL_OPS, And, Comparison, Expr, FieldSpec
from chalicelib.domain.paging import Cursor, Page
from chalicelib.domain.users import User
from chalicelib.services.listing import ListQuery, bounded_page, read_budget
from chalicelib.services.ports import AuditStore, Tx

AUDIT_FILTER_FIELDS = {
    "action": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "actor": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "time": FieldSpec("datetime", ALL_OPS, frozenset()),
    "targetId": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "targetType": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
}


@dataclass(frozen=True)
class Target:
    """What an event is about: its type, id, and (for users) the email at the time."""

    type: str
    id: str
    email: str | None = None


def user_target(user: User) -> Target:
    return Target("user", user.id, user.email)


def user_fields(user: User | None) -> dict[str, Any]:
    """What an event shows of a user; the password only as the fact that it changed."""
    if user is None:
        return {}
    return {
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "state": user.state.value,
        "note": user.note,
        "password": user.password_hash,
    }


def event_record(event: AuditEvent) -> dict[str, Any]:
    return {
        "action": event.action,
        "actor": event.actor,
        "time": event.time,
        "targetId": event.target_id,
        "targetType": event.target_type,
    }


class Audit:
    """Builds events from the request context (who, from where, which request) and stores them."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def event(
        self,
        action: str,
        target: Target,
        changes: dict[str, dict[str, Any]] | None = None,
        by_user: str | None = None,
    ) -> AuditEvent:
        """``by_user`` names a developer acting on their own account (a link, a password)."""
        now = self._clock()
        who = context.current()
        return AuditEvent(
            id=new_event_id(now),
            time=now,
            action=action,
            actor=by_user or who.actor,
            actor_kind="user" if by_user else who.actor_kind,
            address=who.address,
            request_id=who.request_id,
            target_type=target.type,
            target_id=target.id,
            target_email=target.email,
            changes=changes or {},
        )

    def stage(
        self,
        tx: Tx,
        action: str,
        target: Target,
        changes: dict[str, dict[str, Any]] | None = None,
        by_user: str | None = None,
    ) -> None:
        """In the transaction of the change: no change without its event, nor the reverse."""
        self._store.stage_put(tx, self.event(action, target, changes, by_user))

    def record(self, action: str, target: Target, by_user: str | None = None) -> None:
        """An attempt that changed nothing (failed sign-in, refused token, throttled request)."""
        self._store.put(self.event(action, target, None, by_user))

    def stage_user_change(self, tx: Tx, old: User, new: User) -> None:
        """One event per kind of change, each with the fields it concerns."""
        changes = diff(user_fields(old), user_fields(new))
        target = user_target(new)
        if "state" in changes:
            state = {"state": changes.pop("state")}
            action = {"blocked": "user.blocked", "active": "user.activated"}.get(
                new.state.value, "user.state_changed"
            )
            self.stage(tx, action, target, state)
        if "password" in changes:
            self.stage(
                tx, "user.password_set_by_admin", target, {"password": changes.pop("password")}
            )
        if "email" in changes:
            self.stage(tx, "user.email_changed", target, {"email": changes.pop("email")})
        if changes:
            self.stage(tx, "user.updated", target, changes)

    def for_user(self, user_id: str, top: int) -> list[AuditEvent]:
        """The newest events of a user (the console's user page)."""
        return list(self._store.stream(f"user#{user_id}", None, top, top))

    def user_events(self, user_id: str, query: ListQuery) -> Page[AuditEvent]:
        """Newest first; one Query a page."""
        budget = read_budget(query)
        rows = (
            (e.id, e)
            for e in self._store.stream(
                f"user#{user_id}", query.cursor.after, budget + 1, min(budget + 1, 200)
            )
        )
        flt = query.filter
        return bounded_page(
            rows, query, budget, lambda e: flt is None or flt.evaluate(event_record(e))
        )

    def events(self, query: ListQuery, retention_days: int) -> Page[AuditEvent]:
        """The whole trail, newest first, one Query of one month's partition per request.

        The cursor is ``<month>|<last event id>``; when a month runs out, the next page starts
        at the end of the month before, down to the filter's lower time bound or the retention.
        """
        now = self._clock()
        flt = query.filter
        upper, lower = _time_bounds(query)
        oldest = now - timedelta(days=retention_days)
        if lower is not None and lower > oldest:
            oldest = lower
        month, before = _cursor_month(query.cursor.after, upper or now)
        budget = read_budget(query)
        matched = 0

        def matches(event: AuditEvent) -> bool:
            nonlocal matched
            hit = flt is None or flt.evaluate(event_record(event))
            matched += hit
            return hit

        rows = (
            (f"{month}|{e.id}", e)
            for e in self._store.month(month, before, budget + 1, min(budget + 1, 200))
        )
        page = bounded_page(rows, query, budget, matches)
        if page.next is not None:
            return page
        previous = _previous_month(month)
        if previous < oldest.strftime("%Y-%m"):
            return Page(page.items, None, None)
        left = 0 if page.items else max(query.cursor.skip - matched, 0)
        return Page(page.items, Cursor(f"{previous}|", left), None)


def _time_bounds(query: ListQuery) -> tuple[datetime | None, datetime | None]:
    """The range a ``time`` filter names, to know where to start and stop walking months."""
    upper = lower = None
    if query.filter is not None:
        for op_name, attr in (("le", "upper"), ("lt", "upper"), ("ge", "lower"), ("gt", "lower")):
            value = _bound(query.filter, op_name)
            if isinstance(value, datetime):
                if attr == "upper":
                    upper = value
                else:
                    lower = value
    return upper, lower


def _bound(expr: Expr, op: str) -> Any:
    if isinstance(expr, Comparison) and expr.field == "time" and expr.op == op:
        return expr.value
    if isinstance(expr, And):
        for operand in expr.operands:
            found = _bound(operand, op)
            if found is not None:
                return found
    return None


def _cursor_month(after: str | None, start: datetime) -> tuple[str, str | None]:
    if after and "|" in after:
        month, _, before = after.partition("|")
        return month, before or None
    return start.astimezone(UTC).strftime("%Y-%m"), None


def _previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"
