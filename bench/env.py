"""The in-process benchmarks' environment: fake AWS, fixed keys, moto's DynamoDB and SES."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
PRIMARY_KEY = "test-primary-key"
SENDER = "noreply@example.com"
TABLE_PREFIX = "apim-users-bench"


def configure(cheap_hashing: bool = True) -> None:
    """Set before chalicelib is imported (settings are read once, lazily)."""
    os.environ.update(
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        APIM_PRIMARY_KEY=PRIMARY_KEY,
        APIM_SECONDARY_KEY="test-secondary-key",
        SENDER_EMAIL=SENDER,
        # Counting DynamoDB calls does not need the production hashing cost (hashing.py has it).
        ARGON2_MEMORY_KIB="8" if cheap_hashing else "19456",
        ARGON2_TIME_COST="1" if cheap_hashing else "2",
        ARGON2_PARALLELISM="1",
        PUBLIC_RESPONSE_FLOOR_MS="0",
        TABLE_PREFIX=TABLE_PREFIX,
    )
    for name in ("AWS_ENDPOINT_URL", "APIM_KEYS_PARAMETER", "AWS_PROFILE"):
        os.environ.pop(name, None)
    for name in [n for n in os.environ if n.endswith("_TABLE")]:
        del os.environ[name]  # every table name follows TABLE_PREFIX
    # The app logs every request at INFO; a benchmark's output is its table.
    logging.disable(logging.INFO)
    import moto  # noqa: F401  (before any botocore session exists)


def fast_moto_transactions() -> None:
    """Make moto's TransactWriteItems cost what the transaction touches, not the table size.

    moto keeps a deep copy of every table a transaction writes to, taken before each one, to roll
    back a failed transaction: at 100,000 users that is minutes and gigabytes per sweep. Here the
    snapshot is only the items the transaction names, restored the same way when it fails; what
    is stored, what fails, and every count and capacity figure stay the same.
    """
    import copy

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "bench_fast", False):
        return
    # One transaction at a time: the relay's thread (bench/relay.py) commits beside requests,
    # and the class attribute below is set and removed around each one.
    one_at_a_time = threading.Lock()

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with one_at_a_time:
            _transact(self, transact_items)

    def _transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in key:
                continue
            if table.range_key_attr and table.range_key_attr not in key:
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            stored = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(stored)))
        Table.__deepcopy__ = lambda table, memo: table  # type: ignore[attr-defined]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                _restore(table, hash_key, range_key, item)
            raise
        finally:
            del Table.__deepcopy__  # type: ignore[attr-defined]

    transact_write_items.bench_fast = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


@contextmanager
def unchecked_item_sizes() -> Iterator[None]:
    """Skip moto's 400 KB item-size check, which re-measures every attribute at each one added
    (most of the time of a bulk load); the benchmark's items are all under 1 KB."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    checked = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        LimitedSizeDict.__setitem__ = checked  # type: ignore[method-assign]


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items.setdefault(hash_key, {})[range_key] = item


@contextmanager
def moto_backend() -> Iterator[None]:
    """Fresh tables and a verified sender inside moto; the services are built anew."""
    import boto3
    from moto import mock_aws

    from chalicelib.config import get_settings
    from chalicelib.keys import forget_cached_keys
    from chalicelib.store.models import create_tables
    from tests.support import unwire

    fast_moto_transactions()
    with mock_aws():
        unwire()
        forget_cached_keys()
        create_tables(get_settings())
        boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
        try:
            yield
        finally:
            unwire()
