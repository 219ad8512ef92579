"""Fixed hourly windows of attempts per account and per client address; nobody is locked out."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.clock import Clock
from chalicelib.errors import Throttled
from chalicelib.services.audit import Audit, Target
from chalicelib.services.ports import Counters

WINDOW = timedelta(hours=1)


class Throttle:
    """Counts attempts in the current hour; past a limit the caller gets 429 until it ends."""

    def __init__(self, counters: Counters, clock: Clock, *, audit: Audit) -> None:
        self._counters = counters
        self._clock = clock
        self._audit = audit

    def _refuse(self, key: str, retry: int) -> Throttled:
        scope, _, subject = key.rpartition(":")
        self._audit.record("request.throttled", Target(scope, subject))
        return Throttled("Too many attempts; try again later.", retry)

    def _window(self) -> tuple[str, datetime, int]:
        now = self._clock()
        start = now.replace(minute=0, second=0, microsecond=0)
        end = start + WINDOW
        return start.strftime("%Y%m%d%H"), end, max(1, int((end - now).total_seconds()))

    def check(self, limits: dict[str, int]) -> None:
        """429 when any of these keys already reached its limit (reads, counts nothing)."""
        window, _, retry = self._window()
        counts = self._counters.read([f"{key}@{window}" for key in limits])
        for key, limit in limits.items():
            if counts[f"{key}@{window}"] >= limit:
                raise self._refuse(key, retry)

    def count(self, limits: dict[str, int], *, refuse: bool) -> None:
        """Count one attempt on every key; with ``refuse``, 429 once a key passes its limit."""
        window, end, retry = self._window()
        over = [
            k for k, limit in limits.items() if self._counters.add(f"{k}@{window}", end) > limit
        ]
        if refuse and over:
            raise self._refuse(over[0], retry)
