"""Fixed hourly windows of attempts per (account, client address) and per address; no lockout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.clock import Clock
from chalicelib.errors import Throttled
from chalicelib.services.audit import Audit, Target
from chalicelib.services.ports import Counters

WINDOW = timedelta(hours=1)
TOO_MANY = "Too many attempts; try again later."


@dataclass(frozen=True)
class Limit:
    """At most ``most`` counted attempts an hour on one key.

    ``scope`` says what is counted (``signin:pair``, ``reset:address``...), ``subject`` whose
    (an email key or a client address); a pair also names the ``address`` beside the account,
    so each address has its own count for that account and none can spend another's.
    """

    scope: str
    subject: str
    most: int
    address: str | None = None

    @property
    def key(self) -> str:
        return _key(self.scope, self.subject, self.address)


def _key(scope: str, subject: str, address: str | None) -> str:
    pair = "" if address is None else f"|{address}"
    return f"{scope}:{subject}{pair}"


class Throttle:
    """Counts attempts in the current hour; past a limit the caller gets 429 until it ends."""

    def __init__(self, counters: Counters, clock: Clock, *, audit: Audit) -> None:
        self._counters = counters
        self._clock = clock
        self._audit = audit

    def _window(self) -> tuple[str, datetime, int]:
        now = self._clock()
        start = now.replace(minute=0, second=0, microsecond=0)
        end = start + WINDOW
        return start.strftime("%Y%m%d%H"), end, max(1, int((end - now).total_seconds()))

    def _engaged(self, limit: Limit) -> None:
        # Once per key and window, not per refused request: a throttled attacker who keeps
        # trying must not fill the audit trail the console shows.
        self._audit.record("request.throttled", Target(limit.scope, limit.subject))

    def check(self, limits: Sequence[Limit]) -> None:
        """429 when any of these keys already reached its limit (reads, counts nothing)."""
        window, _, retry = self._window()
        counts = self._counters.read([f"{limit.key}@{window}" for limit in limits])
        if any(counts[f"{limit.key}@{window}"] >= limit.most for limit in limits):
            raise Throttled(TOO_MANY, retry)

    def count(self, limits: Sequence[Limit], *, refuse: bool) -> None:
        """Count one attempt on every key; with ``refuse``, 429 once a key passes its limit.

        Without ``refuse`` (failures, counted after the fact) a key is throttled from the count
        that reaches its limit on, which ``check`` then refuses; with it, from the one past it.
        """
        window, end, retry = self._window()
        over = False
        for limit in limits:
            counted = self._counters.add(f"{limit.key}@{window}", end)
            if counted == limit.most + (1 if refuse else 0):
                self._engaged(limit)
            over = over or counted > limit.most
        if refuse and over:
            raise Throttled(TOO_MANY, retry)

    def first(self, scope: str, subject: str, address: str) -> bool:
        """Count one on (scope, subject, address); True only for the first in this window.

        For what is worth recording once an hour, not at every attempt (a replayed token).
        """
        window, end, _ = self._window()
        return self._counters.add(f"{_key(scope, subject, address)}@{window}", end) == 1
