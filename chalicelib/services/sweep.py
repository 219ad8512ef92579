"""The scheduled sweep: expire links past their expiry, retry the emails that are due."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from chalicelib.domain.clock import Clock
from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.errors import LinkUnusable
from chalicelib.logs import logger
from chalicelib.services.audit import Audit, Target
from chalicelib.services.ports import Store
from chalicelib.services.relay import OutboxRelay

log = logger()
# One run handles at most this many items of each kind; the next run (hourly) takes the rest.
BATCH = 1000
_EXPIRED_EVENTS = {
    LinkPurpose.INVITE: "invitation.expired",
    LinkPurpose.SIGNUP: "invitation.expired",
    LinkPurpose.RESET: "password.reset_link_expired",
}


@dataclass(frozen=True)
class SweepReport:
    """Counts of what one run did."""

    expired: int
    sent: int
    retried: int
    failed: int
    cancelled: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SweepService:
    """Idempotent, and safe to run twice at once: every change is conditional."""

    def __init__(self, store: Store, relay: OutboxRelay, clock: Clock, *, audit: Audit) -> None:
        self._audit = audit
        self._store = store
        self._relay = relay
        self._clock = clock

    def run(self) -> SweepReport:
        now = self._clock()
        expired = 0
        for link in list(self._store.links.due(now, BATCH)):
            tx = self._store.transaction()
            self._store.links.stage_end(tx, link, LinkState.EXPIRED, now)
            action = _EXPIRED_EVENTS[link.purpose]
            self._audit.stage(tx, action, Target("user", link.user_id))
            try:
                tx.commit()
            except LinkUnusable:
                continue  # accepted, revoked or expired by someone else meanwhile
            expired += 1
        # The safety net of the relay: failed attempts, and messages it never claimed.
        mail = self._relay.retry_due(BATCH)
        report = SweepReport(expired, mail.sent, mail.retried, mail.failed, mail.cancelled)
        log.info("sweep done", extra={"sweep": report.as_dict()})
        return report
