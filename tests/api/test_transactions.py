"""Transactions: conflicts with other transactions are retried, then a 503; never half-done."""

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.bootstrap import services
from chalicelib.domain.users import User, UserState
from chalicelib.errors import EmailTaken, ServiceBusy
from chalicelib.store.tx import CONFLICT_RETRIES
from chalicelib.store.tx import DynamoTx as Tx

# DynamoDB's transactions themselves: on moto in `make test-fast` too.
pytestmark = pytest.mark.moto


class ConflictingTx(Tx):
    """DynamoDB cancels a transaction touching an item another one holds; moto never does."""

    def __init__(self, connection, conflicts):
        super().__init__(connection)
        self.conflicts = conflicts
        self.sent = 0

    def _send(self, ordered):
        self.sent += 1
        if self.sent <= self.conflicts:
            from pynamodb.exceptions import CancellationReason, VerboseClientError

            cause = VerboseClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}},
                "TransactWriteItems",
                cancellation_reasons=[CancellationReason(code="TransactionConflict"), None],
            )
            raise TransactWriteError("cancelled", cause=cause)
        super()._send(ordered)


def a_user(user_id, email):
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return User(user_id, email, "A", "B", UserState.ACTIVE, None, now, (), 1)


def stage(store, user, conflicts):
    tx = ConflictingTx(store.transaction()._connection, conflicts)
    store.users.stage_create(tx, user)
    return tx


def test_a_conflict_is_retried_until_it_commits(api):
    store = services().store
    tx = stage(store, a_user("u1", "u1@example.com"), conflicts=2)
    tx.commit()
    assert tx.sent == 3
    assert api.get("/users/u1").status == 200


def test_after_the_winner_commits_the_retry_sees_its_condition(api, wired):
    api.create_user("winner", "same@example.com")
    store = services().store
    tx = stage(store, a_user("loser", "SAME@example.com"), conflicts=1)
    with pytest.raises(EmailTaken):
        tx.commit()
    assert api.get("/users/loser").status == 404


def test_endless_conflicts_end_as_service_busy_with_nothing_written(api):
    store = services().store
    tx = stage(store, a_user("u2", "u2@example.com"), conflicts=CONFLICT_RETRIES + 1)
    with pytest.raises(ServiceBusy):
        tx.commit()
    assert api.get("/users/u2").status == 404
