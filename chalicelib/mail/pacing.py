"""Pacing sends at the account's maximum send rate, and backing off when SES says too fast."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

# Below this a configured or reported rate is taken as this (one message every 10 s at most).
_SLOWEST = 0.1
# After SES throttles anyway: wait 1 s, then 2, 4, at most 8 before the next send.
_LONGEST_PAUSE = 8.0


class Timer(Protocol):
    """Time as the pacer sees it: the real one, or a test's, which moves only when slept."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    """``time.monotonic`` and ``time.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class SendPacer:
    """Spaces sends evenly, one every 1/rate seconds, so that no second holds more than the
    rate. Shared by everything that sends in a container (the relay, the sweep)."""

    def __init__(self, rate: Callable[[], float], timer: Timer) -> None:
        self._rate = rate
        self._timer = timer
        self._lock = threading.Lock()
        self._next = float("-inf")

    def wait(self) -> None:
        """Return when the next send may go (at once when the last one was long enough ago).

        The next send's time is counted from when a sender actually goes, not from the time it
        was given: a thread woken late (a loaded machine) would otherwise leave the next one a
        slot already past, and the two would go together, 15 in one second at a rate of 14.
        """
        interval = 1.0 / max(self._rate(), _SLOWEST)
        while True:
            with self._lock:
                now = self._timer.monotonic()
                if now >= self._next:
                    self._next = now + interval
                    return
                delay = self._next - now
            self._timer.sleep(delay)

    def throttled(self, retry: int) -> None:
        """SES refused for the rate (another sender shares the account): nobody here sends
        for 1, 2, 4... (at most 8) seconds; the caller then waits for its turn again."""
        pause = min(2.0**retry, _LONGEST_PAUSE)
        with self._lock:
            self._next = max(self._next, self._timer.monotonic() + pause)
