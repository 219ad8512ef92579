"""The relay's stream follower reads as often as Lambda does while the stream is quiet."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.relay import BUSY_POLL_SECONDS, IDLE_POLL_SECONDS, StreamFollower


class Stream:
    """A stream that gains the given numbers of records, one number a read."""

    def __init__(self, gains: list[int]) -> None:
        self.gains = gains

    def read(self) -> list[dict[str, Any]]:
        count = self.gains.pop(0) if self.gains else 0
        return [{"dynamodb": {"SequenceNumber": str(n)}} for n in range(count)]


class Stop(threading.Event):
    """Records each wait of the follower, and stops it after ``reads`` of them."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.reads = reads

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return len(self.waits) > self.reads


def test_the_follower_reads_soon_while_records_come_and_four_times_a_second_when_quiet():
    handled: list[int] = []
    follower = StreamFollower(handler=lambda event, _: handled.append(len(event["Records"])) or {})
    follower._stream = Stream([0, 3, 2, 0, 0, 1])  # type: ignore[assignment]
    stop = Stop(reads=6)
    follower.follow(stop)
    assert handled == [3, 2, 1]
    busy, idle = BUSY_POLL_SECONDS, IDLE_POLL_SECONDS
    # The first read comes soon; a quiet read slows the next one, a read with records speeds it.
    assert stop.waits == [busy, idle, busy, busy, idle, idle, busy]
    assert idle == 0.25 and busy < idle
