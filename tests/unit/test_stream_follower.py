"""The relay's stream follower hands over what Lambda's event source mapping would, as often."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.relay import BUSY_POLL_SECONDS, IDLE_POLL_SECONDS, StreamFollower


def record(event: str, sequence: int) -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"SequenceNumber": str(sequence)}}


class Stream:
    """A stream that gains the given new messages (INSERTs) a read, each followed by the two
    updates the relay's claim and send write."""

    def __init__(self, gains: list[int]) -> None:
        self.gains = gains
        self.sequence = 0

    def read(self) -> list[dict[str, Any]]:
        found = []
        for _ in range(self.gains.pop(0) if self.gains else 0):
            for event in ("INSERT", "MODIFY", "MODIFY"):
                self.sequence += 1
                found.append(record(event, self.sequence))
        return found


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
    handled: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        handled.append([r["eventName"] for r in event["Records"]])
        return {}

    follower = StreamFollower(handler=handler, stream=Stream([0, 3, 2, 0, 0, 1]))
    stop = Stop(reads=6)
    follower.follow(stop)
    # Only the new messages, as the prod mapping's filter hands over (tests/deploy/stack.py).
    assert handled == [["INSERT"] * 3, ["INSERT"] * 2, ["INSERT"]]
    busy, idle = BUSY_POLL_SECONDS, IDLE_POLL_SECONDS
    # The first read comes soon; a quiet read slows the next one, a read with records speeds it.
    assert stop.waits == [busy, idle, busy, busy, idle, idle, busy]
    assert idle == 0.25 and busy < idle
