"""The outbox relay's edges: the Lambda handler of the outbox stream, and a follower of that
stream for places without Lambda (``apim-users dev``, the test stacks, the in-process tests).

In AWS, an event source mapping (tests/deploy/stack.py writes it into the prod template) reads
the outbox table's stream and invokes ``outbox_relay`` (app.py) with batches of new messages;
the function answers with the records it did not handle (``ReportBatchItemFailures``), and the
mapping hands those over again, splits failing batches, and gives up after a few retries (the
sweep then sends what is left). ``StreamFollower`` does the same with the Streams API: it reads
what the stream gained, hands it to the same handler in batches of the same size, and retries
what the handler returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib.bootstrap import services
from chalicelib.logs import logger

log = logger()

# Records per invocation and retries of a failing record, as in the prod event source mapping,
# and the records it hands over at all (its filter): new messages, not the relay's own updates.
BATCH_SIZE = 50
MAX_RETRIES = 3
HANDED_EVENTS = ("INSERT",)

# Lambda reads a stream's shards four times a second; the follower does the same while the
# stream is quiet (each read is three requests to the backend) and reads sooner while it is busy.
IDLE_POLL_SECONDS = 0.25
BUSY_POLL_SECONDS = 0.1

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class StreamReader(Protocol):
    """What the follower reads: the records a stream gained since the last read, in order."""

    def read(self) -> list[dict[str, Any]]: ...


def handle_stream_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One batch of the outbox stream: send each new message once; answer what is left."""
    time_left = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):

        def time_left() -> float:
            return float(context.get_remaining_time_in_millis()) / 1000

    outcome = services().relay.handle_records(event.get("Records") or [], time_left)
    counts = outcome.report.as_dict()
    if any(counts.values()) or outcome.unhandled:
        log.info("relay batch", extra={"relay": {**counts, "unhandled": len(outcome.unhandled)}})
    return {"batchItemFailures": [{"itemIdentifier": s} for s in outcome.unhandled]}


class StreamFollower:
    """Reads the outbox stream and hands each batch to ``handler``, as Lambda would."""

    def __init__(
        self,
        handler: Handler = handle_stream_event,
        endpoint_url: str | None = None,
        batch_size: int = BATCH_SIZE,
        stream: StreamReader | None = None,
    ) -> None:
        """``stream`` defaults to the outbox table's (the Streams API at ``endpoint_url``)."""
        self._handler = handler
        self._endpoint_url = endpoint_url
        self._batch_size = batch_size
        self._stream = stream
        # Records the handler gave back, with the retries they have had.
        self._pending: list[tuple[dict[str, Any], int]] = []

    def _reader(self) -> StreamReader:
        if self._stream is None:
            from chalicelib.store.stream import OutboxStream

            region = services().settings.region
            self._stream = OutboxStream(region, self._endpoint_url)
        return self._stream

    def retrying(self) -> bool:
        """Whether records the handler gave back wait for the next drain."""
        return bool(self._pending)

    def drain(self) -> int:
        """Hand over every new message the stream announced since the last call (and the records
        handed back before); returns how many records were handed over."""
        # The composition root binds the models to this stage's tables (the stream's table too).
        services().store  # noqa: B018
        read = self._reader().read()
        queue = self._pending + [(r, 0) for r in read if r.get("eventName") in HANDED_EVENTS]
        self._pending = []
        for start in range(0, len(queue), self._batch_size):
            batch = queue[start : start + self._batch_size]
            answer = self._handler({"Records": [record for record, _ in batch]}, None)
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
            for record, retries in batch:
                if record["dynamodb"]["SequenceNumber"] not in failed:
                    continue
                if retries < MAX_RETRIES:
                    self._pending.append((record, retries + 1))
                else:
                    log.warning("relay gave up on a record; the sweep sends its message later")
        return len(queue)

    def follow(
        self,
        stop: threading.Event,
        busy: float = BUSY_POLL_SECONDS,
        idle: float = IDLE_POLL_SECONDS,
    ) -> None:
        """Drain until ``stop`` is set: again after ``busy`` seconds while the stream keeps
        gaining records, after ``idle`` once it is quiet; errors are printed, not fatal (a
        backend being reset, a table not there yet)."""
        wait = busy
        while not stop.wait(wait):
            try:
                wait = busy if self.drain() else idle
            except Exception as exc:
                print(f"relay: {type(exc).__name__}: {exc}", flush=True)
                stop.wait(1.0)
