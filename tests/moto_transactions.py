"""moto's TransactWriteItems with a rollback that saves only the items the transaction writes.

moto 5.2.5 backs up every table a transaction names with ``copy.deepcopy`` before it starts, on
success too: every item, and every record of the table's stream. The session's one moto keeps
the outbox stream and all rows of a test, so each transaction of a long test copied more than
the one before (the 500-invitation burst spent minutes in it). ``install()`` replaces that backup
with an undo log: before moto's own code runs, each item the transaction names (by table and
key) is copied, with the length of each touched table's stream. If moto raises, those items are
put back as they were (an item that did not exist is removed again) and the streams lose the
records the transaction added, which is what restoring moto's copies does. moto's code still
does everything else: the per-item conditions, ``CancellationReasons``, the writes themselves.

Two differences from moto, both towards DynamoDB: the rollback also follows an error moto raises
without rolling back (a request it rejects half way, e.g. two operations in one item of the
list), so a transaction is all-or-nothing whatever fails; and a table and its stream stay the
same objects after a rollback, so a shard iterator made before it still reads what comes after.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The moto release whose transact_write_items this was written against (pyproject pins it).
MOTO_VERSION = "5.2.5"


class _TablesNotCopied:
    """The ``copy`` module as moto's DynamoDB backend sees it, except that, while ``skip`` is
    set, a Table is not deep-copied: the undo log below replaces that backup."""

    def __init__(self) -> None:
        self.skip = False

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if self.skip and isinstance(value, Table):
            return value  # moto's rollback then puts the same (live) table back: a no-op
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


_COPY = _TablesNotCopied()
_original: Any = None


class _Undo:
    """What a transaction may change, saved before it runs: each named item and each stream's
    length. ``restore`` puts it all back."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        # (table, hash key, range key, item before or None, whether the hash bucket existed)
        self.items: list[tuple[Any, Any, Any, Any, bool]] = []
        self.streams: dict[int, tuple[Any, list[Any], int]] = {}
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue  # moto refuses the request before this entry writes anything
            op = next(iter(entry.values()))
            try:
                table = backend.get_table(op["TableName"])
                keys = op["Item"] if "Item" in op else op["Key"]
                hash_key = DynamoType(keys[table.hash_key_attr])
                range_key = DynamoType(keys[table.range_key_attr]) if table.has_range_key else None
            except Exception:
                continue  # no table or no key: moto fails this entry before it writes
            existed = hash_key in table.items
            if table.has_range_key:
                before = table.items[hash_key].get(range_key) if existed else None
            else:
                before = table.items.get(hash_key)
            self.items.append((table, hash_key, range_key, copy.deepcopy(before), existed))
            shard = table.stream_shard
            if shard is not None and id(shard) not in self.streams:
                self.streams[id(shard)] = (shard, shard.items, len(shard.items))

    def restore(self) -> None:
        # Backwards, so that an item named twice ends as it was before the first.
        for table, hash_key, range_key, before, existed in reversed(self.items):
            if table.has_range_key:
                bucket = table.items.get(hash_key)
                if before is not None:
                    table.items[hash_key][range_key] = before
                elif bucket is not None:
                    bucket.pop(range_key, None)
                    # moto's get_item leaves an empty bucket behind (a defaultdict): not there
                    # before, not there after.
                    if not bucket and not existed:
                        del table.items[hash_key]
            elif before is not None:
                table.items[hash_key] = before
            else:
                table.items.pop(hash_key, None)
        for shard, records, length in self.streams.values():
            # moto replaces the list when a Lambda mapping consumed it; the old one still holds
            # what was there before, then what this transaction appended.
            del records[length:]
            shard.items = records


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, rolled back by the undo log instead of table copies."""
    undo = _Undo(self, transact_items)
    _COPY.skip = True
    try:
        _original(self, transact_items)
    except BaseException:
        undo.restore()
        raise
    finally:
        _COPY.skip = False


def install() -> bool:
    """Patch moto's DynamoDB backend (idempotent). False, with a warning, on another moto release,
    whose code this was not checked against: moto's own (slow) rollback then stays."""
    global _original
    import moto
    import moto.dynamodb.models as models

    if _original is not None:
        return True
    if moto.__version__ != MOTO_VERSION:
        warnings.warn(
            f"tests/moto_transactions.py was written for moto {MOTO_VERSION}, not "
            f"{moto.__version__}: transactions keep moto's own rollback (correct, but slow)",
            stacklevel=2,
        )
        return False
    _original = models.DynamoDBBackend.transact_write_items
    models.copy = _COPY
    models.DynamoDBBackend.transact_write_items = transact_write_items
    return True


@contextmanager
def moto_rollback() -> Iterator[None]:
    """moto's own TransactWriteItems (deep copies) inside this block: what tests compare with."""
    import moto.dynamodb.models as models

    patched = models.DynamoDBBackend.transact_write_items
    models.DynamoDBBackend.transact_write_items = _original or patched
    try:
        yield
    finally:
        models.DynamoDBBackend.transact_write_items = patched
