"""One DynamoDB transaction, built by several repositories, with failures mapped per item."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.domain.tx import Tx
from chalicelib.errors import ServiceBusy

_BUSY_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
}
# PynamoDB sends a transaction's items in this order, whatever order they were added in.
_ORDER = {"check": 0, "delete": 1, "put": 2, "update": 3}

OnFail = Callable[[], Exception]
_Op = tuple[str, tuple[Model, list[Any] | None, Condition | None], OnFail | None]
CONFLICT_RETRIES = 3


@contextmanager
def dynamodb_errors() -> Iterator[None]:
    """Throttling, transaction conflicts and an unreachable DynamoDB become ServiceBusy (503)."""
    try:
        yield
    except PynamoDBException as exc:
        code = response_code(exc)
        if code is None:
            # No answer at all (botocore gave up reconnecting): a retry of the request is safe,
            # since every change is conditional or idempotent.
            raise ServiceBusy(
                "The storage service could not be reached; retry the request."
            ) from exc
        reasons = _reasons(exc) if isinstance(exc, TransactWriteError) else []
        if code in _BUSY_CODES or "TransactionConflict" in reasons:
            raise ServiceBusy("The service is busy; retry the request.") from exc
        raise


def response_code(exc: PynamoDBException) -> str | None:
    """DynamoDB's error code; None when no answer came (PynamoDB's own property then fails:
    connection errors carry ``response = None``)."""
    response = getattr(exc.cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def _reasons(exc: TransactWriteError) -> list[str | None]:
    return [r.code if r else None for r in (exc.cancellation_reasons or [])]


def is_condition_failure(exc: PynamoDBException) -> bool:
    return response_code(exc) == "ConditionalCheckFailedException"


class DynamoTx:
    """Collects writes; ``commit`` sends them as one TransactWriteItems call.

    Each write names the domain error its failed condition means, so callers never decode
    cancellation reasons themselves.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._ops: list[_Op] = []

    def put(self, item: Model, condition: Condition | None, on_fail: OnFail | None) -> None:
        self._ops.append(("put", (item, None, condition), on_fail))

    def update(
        self, item: Model, actions: list[Any], condition: Condition | None, on_fail: OnFail | None
    ) -> None:
        self._ops.append(("update", (item, actions, condition), on_fail))

    def delete(self, item: Model, condition: Condition | None, on_fail: OnFail | None) -> None:
        self._ops.append(("delete", (item, None, condition), on_fail))

    def check(self, item: Model, condition: Condition, on_fail: OnFail | None) -> None:
        """A condition on an item this transaction does not write: the commit fails unless it
        holds (e.g. another account is still the one that was read)."""
        self._ops.append(("check", (item, None, condition), on_fail))

    def _commit_single(self) -> None:
        """One write needs no transaction: a conditional write is atomic and costs half."""
        kind, (item, actions, condition), on_fail = self._ops[0]
        try:
            with dynamodb_errors():
                if kind == "put":
                    item.save(condition=condition)
                elif kind == "update":
                    item.update(actions=actions or [], condition=condition)
                else:
                    item.delete(condition=condition)
        except PynamoDBException as exc:
            if is_condition_failure(exc) and on_fail is not None:
                raise on_fail() from exc
            raise

    def __len__(self) -> int:
        return len(self._ops)

    def commit(self) -> None:
        if not self._ops:
            return
        if len(self._ops) == 1 and self._ops[0][0] != "check":
            self._commit_single()
            return
        ordered = sorted(self._ops, key=lambda op: _ORDER[op[0]])
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self._send(ordered)
                return
            except TransactWriteError as exc:
                reasons = _reasons(exc)
                for (_, _, on_fail), reason in zip(ordered, reasons, strict=False):
                    if reason == "ConditionalCheckFailed" and on_fail is not None:
                        raise on_fail() from exc
                # Another transaction held one of our items; nothing was written. Once it ends,
                # a retry either commits or meets the condition the winner made false (a 409).
                if "TransactionConflict" in reasons and attempt < CONFLICT_RETRIES:
                    time.sleep(random.uniform(0.01, 0.04) * (attempt + 1))
                    continue
                with dynamodb_errors():
                    raise

    def _send(self, ordered: list[_Op]) -> None:
        with TransactWrite(connection=self._connection) as tx:
            for kind, (item, actions, condition), _ in ordered:
                if kind == "put":
                    tx.save(item, condition=condition)
                elif kind == "check":
                    assert condition is not None
                    hash_key = getattr(item, item._hash_keyname or "")
                    range_key = getattr(item, item._range_keyname) if item._range_keyname else None
                    tx.condition_check(type(item), hash_key, range_key, condition=condition)
                elif kind == "update":
                    tx.update(item, actions=actions or [], condition=condition)
                else:
                    tx.delete(item, condition=condition)


def writes(tx: Tx) -> DynamoTx:
    """The DynamoDB transaction behind a port: repositories stage writes only into their own."""
    if not isinstance(tx, DynamoTx):
        raise TypeError(f"a DynamoDB repository was given a {type(tx).__name__} transaction")
    return tx
