"""The outbox and the throttling counters: the same answers from the fakes and from DynamoDB."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.messages import Delivery, Message, MessageTaken

NOW = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def a_message(message_id, **fields):
    values = {
        "id": message_id,
        "template": "inviteUserNotificationMessage",
        "to_email": "ada@example.com",
        "user_id": "ada",
        "values": {"DevFirstName": "Ada", "OrganizationName": "Contoso"},
        "created_at": NOW,
        "next_attempt_at": NOW + timedelta(minutes=2),
        "link": ("ada", "20260301T120000000000-aa"),
        "attempts": 1,
    }
    return Message(**{**values, **fields})


def queue(store, *messages):
    tx = store.transaction()
    for message in messages:
        store.outbox.stage_put(tx, message)
    tx.commit()


def test_a_message_reads_back_as_it_was_queued(backend):
    store = backend.store
    linked, plain = a_message("m1"), a_message("m2", link=None, values={}, attempts=0)
    queue(store, linked, plain)
    assert store.outbox.get("m1") == linked
    assert store.outbox.get("nope") is None
    assert store.outbox.get_many(["m2", "m1", "nope"]) == {"m1": linked, "m2": plain}
    # A queued message starts without a send time or an error, whatever it was given.
    queue(store, a_message("m3", sent_at=NOW, last_error="old"))
    assert store.outbox.get("m3") == a_message("m3")


def test_every_state_change_is_conditional_on_the_attempt_count(backend):
    outbox = backend.store.outbox
    message = a_message("m1")
    queue(backend.store, message)
    claim(backend.store, message, NOW + timedelta(minutes=5))
    claimed = outbox.get("m1")
    assert (claimed.attempts, claimed.next_attempt_at) == (2, NOW + timedelta(minutes=5))
    # Someone else's view of the message (one attempt fewer) changes nothing any more.
    with pytest.raises(MessageTaken):
        claim(backend.store, message, NOW)
    assert not outbox.mark_sent(message, NOW)
    assert not outbox.mark_retry(message, "late", NOW)
    assert not outbox.mark_ended(message, Delivery.FAILED, "late", NOW)
    assert outbox.get("m1") == claimed
    assert outbox.mark_retry(claimed, "Throttling: " + "x" * 600, NOW + timedelta(minutes=9))
    retried = outbox.get("m1")
    assert retried.last_error == ("Throttling: " + "x" * 600)[:500]
    assert retried.next_attempt_at == NOW + timedelta(minutes=9)
    assert retried.state is Delivery.QUEUED
    assert outbox.mark_sent(retried, NOW + timedelta(minutes=10))
    sent = outbox.get("m1")
    assert (sent.state, sent.sent_at, sent.last_error) == (
        Delivery.SENT,
        NOW + timedelta(minutes=10),
        None,
    )
    assert not outbox.mark_retry(sent, "after", NOW)  # only queued messages change
    with pytest.raises(MessageTaken):
        claim(backend.store, a_message("ghost"), NOW)


def claim(store, message, until):
    tx = store.transaction()
    store.outbox.stage_claim(tx, message, until)
    tx.commit()


def test_only_queued_messages_whose_attempt_is_due_are_due_in_that_order(backend):
    store = backend.store
    late = a_message("late", next_attempt_at=NOW + timedelta(minutes=30))
    soon = a_message("soon", next_attempt_at=NOW + timedelta(minutes=1))
    failed = a_message("failed", next_attempt_at=NOW)
    cancelled = a_message("cancelled", next_attempt_at=NOW)
    queue(store, late, soon, failed, cancelled)
    assert store.outbox.mark_ended(failed, Delivery.FAILED, "MessageRejected", NOW)
    assert store.outbox.mark_ended(cancelled, Delivery.CANCELLED, "link ended", NOW)
    ended = store.outbox.get("cancelled")
    assert (ended.state, ended.last_error) == (Delivery.CANCELLED, "link ended")
    assert list(store.outbox.due(NOW, 10)) == []
    assert list(store.outbox.due(NOW + timedelta(hours=1), 10)) == [soon, late]
    assert list(store.outbox.due(NOW + timedelta(hours=1), 1)) == [soon]
    assert store.outbox.mark_sent(soon, NOW)
    assert list(store.outbox.due(NOW + timedelta(hours=1), 10)) == [late]
    retry_at = NOW + timedelta(minutes=20)
    assert store.outbox.mark_retry(late, "Throttling", retry_at)
    assert list(store.outbox.due(retry_at, 10)) == [
        replace(late, last_error="Throttling", next_attempt_at=retry_at)
    ]


def test_counters_count_and_read_zero_when_never_counted(backend):
    counters = backend.store.counters
    end = NOW + timedelta(hours=1)
    assert [counters.add("signin:account:ada@example.com@2026030112", end) for _ in range(3)] == [
        1,
        2,
        3,
    ]
    assert counters.add("signin:address:127.0.0.1@2026030112", end) == 1
    assert counters.read(
        [
            "signin:account:ada@example.com@2026030112",
            "signin:address:127.0.0.1@2026030112",
            "signin:account:bob@example.com@2026030112",
        ]
    ) == {
        "signin:account:ada@example.com@2026030112": 3,
        "signin:address:127.0.0.1@2026030112": 1,
        "signin:account:bob@example.com@2026030112": 0,
    }
