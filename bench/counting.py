"""Counts DynamoDB requests and computes the capacity they would consume on AWS.

Every botocore session registers ``botocore.handlers.BUILTIN_HANDLERS`` when it is created, so
appending two handlers there (before the app creates any session) sees every DynamoDB call that
PynamoDB or boto3 makes. PynamoDB already asks for ``ReturnConsumedCapacity=TOTAL``, but moto
answers a constant (1.0 or 0.5 per request, whatever the item size or consistency), so the read
and write units are computed here from item sizes with DynamoDB's published rules:

- item size: attribute names plus values (strings and binaries by their UTF-8 length, numbers
  about one byte per two significant digits plus one, lists and maps 3 bytes plus 1 per element);
- reads: GetItem and every BatchGetItem key ``ceil(size / 4 KB)``, at least 1; Query and Scan
  ``ceil(sum of the sizes of every item read, including those a filter drops, / 4 KB)``, at
  least 1; half of that when eventually consistent (always on a global secondary index); twice
  that inside TransactGetItems;
- writes: ``ceil(max(size before, size after) / 1 KB)``, at least 1, twice inside
  TransactWriteItems; every global secondary index whose entry appears, disappears or changes
  costs a write of its own (two when its key changes), at the standard rate.

The size of an item before and after a write is read with a separate client whose calls are not
counted (a strongly consistent GetItem against the same backend).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from typing import Any

READ_UNIT = 4096
WRITE_UNIT = 1024
Json = dict[str, Any]


def value_size(value: Json) -> int:
    """Bytes of one DynamoDB-JSON attribute value, by DynamoDB's sizing rules."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(raw.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(v) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown attribute type {kind}")


def _number_size(raw: str) -> int:
    digits = Decimal(raw).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def item_size(item: Json | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


@dataclass(frozen=True)
class IndexSpec:
    name: str
    keys: tuple[str, ...]
    projection: str
    non_key: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    keys: tuple[str, ...]
    indexes: tuple[IndexSpec, ...]


@dataclass
class Request:
    """One DynamoDB request and what it cost."""

    operation: str
    tables: tuple[str, ...]
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0
    items_read: int = 0
    items_returned: int = 0
    index: str | None = None
    error: str | None = None
    items_written: int = 0
    label: str = ""


@dataclass
class Measurement:
    """Every DynamoDB request made inside one ``Meter.measure`` block."""

    requests: list[Request] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def read_units(self) -> float:
        return sum(r.read_units for r in self.requests)

    @property
    def write_units(self) -> float:
        return sum(r.write_units + r.index_write_units for r in self.requests)

    @property
    def index_write_units(self) -> float:
        return sum(r.index_write_units for r in self.requests)

    def items_read(self, operation: str | None = None, index: str | None = None) -> int:
        return sum(
            r.items_read
            for r in self.requests
            if (operation is None or r.operation == operation)
            and (index is None or r.index == index)
        )

    def operations(self) -> dict[str, int]:
        return dict(Counter(r.operation for r in self.requests))

    def summary(self) -> str:
        """``GetItem + Query(by-token) + 3x UpdateItem`` in call order, repeats folded."""
        names = [r.operation + (f"({r.label})" if r.label else "") for r in self.requests]
        folded = []
        for name, run in groupby(names):
            times = len(list(run))
            folded.append(f"{times}x {name}" if times > 1 else name)
        return " + ".join(folded) if folded else "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "operations": self.operations(),
            "sequence": self.summary(),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "index_write_units": self.index_write_units,
            "items_read": self.items_read(),
        }


class Meter:
    """Install once, before the code under test creates its first botocore session."""

    def __init__(self, region: str, table_prefix: str = "") -> None:
        self._region = region
        self._prefix = table_prefix
        self._local = threading.local()
        self._specs: dict[str, TableSpec] = {}
        self._peek_client: Any = None
        self._current: Measurement | None = None

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("provide-client-params.dynamodb", self._before))
        BUILTIN_HANDLERS.append(("after-call.dynamodb", self._after))

    def forget_tables(self) -> None:
        """Table layouts are cached by name; call when tables are created anew."""
        self._specs.clear()

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        measurement = Measurement()
        self._current = measurement
        try:
            yield measurement
        finally:
            self._current = None

    # -- the uncounted side channel ------------------------------------------------------------

    @contextmanager
    def _uncounted(self) -> Iterator[None]:
        before = getattr(self._local, "off", False)
        self._local.off = True
        try:
            yield
        finally:
            self._local.off = before

    def _peek(self) -> Any:
        if self._peek_client is None:
            import botocore.session

            with self._uncounted():
                self._peek_client = botocore.session.get_session().create_client(
                    "dynamodb", region_name=self._region
                )
        return self._peek_client

    def _spec(self, table: str) -> TableSpec:
        if table not in self._specs:
            with self._uncounted():
                described = self._peek().describe_table(TableName=table)["Table"]
            indexes = tuple(
                IndexSpec(
                    name=gsi["IndexName"],
                    keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection=gsi["Projection"]["ProjectionType"],
                    non_key=tuple(gsi["Projection"].get("NonKeyAttributes", ())),
                )
                for gsi in described.get("GlobalSecondaryIndexes", [])
            )
            keys = tuple(k["AttributeName"] for k in described["KeySchema"])
            self._specs[table] = TableSpec(keys, indexes)
        return self._specs[table]

    def _stored(self, table: str, key: Json) -> Json | None:
        with self._uncounted():
            found = self._peek().get_item(TableName=table, Key=key, ConsistentRead=True)
        return found.get("Item")

    def _key_of(self, table: str, item: Json) -> Json:
        return {name: item[name] for name in self._spec(table).keys}

    # -- the hooks ------------------------------------------------------------------------------

    def _off(self) -> bool:
        return getattr(self._local, "off", False) or self._current is None

    def _before(self, params: Json, model: Any, context: Json, **_: Any) -> None:
        if self._off():
            return
        writes = []
        for table, key, new_item, factor in _writes(model.name, params, self._key_of):
            writes.append((table, key, new_item, factor, self._stored(table, key)))
        context["bench_meter"] = {"params": params, "writes": writes}

    def _after(self, parsed: Json, model: Any, context: Json, **_: Any) -> None:
        state = context.get("bench_meter")
        if self._off() or state is None:
            return
        operation = model.name
        params: Json = state["params"]
        request = Request(operation, _tables(params))
        error = parsed.get("Error", {}).get("Code")
        request.error = error
        if operation in ("GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"):
            self._count_reads(request, params, parsed)
        for table, key, new_item, factor, before in state["writes"]:
            after = self._stored(table, key)
            size = max(item_size(before), item_size(after), item_size(new_item))
            request.write_units += factor * write_units(size)
            request.index_write_units += self._index_writes(table, before, after)
        request.items_written = len(state["writes"])
        request.label = self._label(request)
        assert self._current is not None
        self._current.requests.append(request)

    def _label(self, request: Request) -> str:
        """``users``, ``links.by-token``, or ``3 items`` for a transaction."""
        if request.operation in ("TransactWriteItems", "TransactGetItems", "BatchWriteItem"):
            return f"{request.items_written or request.items_read} items"
        names = [t.removeprefix(self._prefix) for t in request.tables]
        label = ",".join(names)
        return f"{label}.{request.index}" if request.index else label

    def _count_reads(self, request: Request, params: Json, parsed: Json) -> None:
        operation = request.operation
        if operation == "GetItem":
            item = parsed.get("Item")
            request.items_read = request.items_returned = 1 if item else 0
            request.read_units = read_units(item_size(item), bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, wanted in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                consistent = bool(wanted.get("ConsistentRead"))
                request.items_read += len(found)
                request.items_returned += len(found)
                request.read_units += sum(read_units(item_size(i), consistent) for i in found)
                missing = len(wanted["Keys"]) - len(found)
                request.read_units += missing * read_units(0, consistent)
        elif operation == "TransactGetItems":
            for response in parsed.get("Responses", []):
                item = response.get("Item")
                request.items_read += 1 if item else 0
                request.read_units += 2 * read_units(item_size(item), True)
        else:  # Query, Scan
            request.index = params.get("IndexName")
            returned = parsed.get("Items", [])
            request.items_read = int(parsed.get("ScannedCount", len(returned)))
            request.items_returned = int(parsed.get("Count", len(returned)))
            scanned = returned
            if request.items_read > len(returned):
                scanned = self._unfiltered(operation, params)
            consistent = bool(params.get("ConsistentRead")) and request.index is None
            request.read_units = read_units(sum(item_size(i) for i in scanned), consistent)

    def _unfiltered(self, operation: str, params: Json) -> list[Json]:
        """The same read without its filter: what DynamoDB read (and charged) before filtering."""
        again = {k: v for k, v in params.items() if k not in ("FilterExpression", "Select")}
        kept = " ".join(
            str(again.get(k, "")) for k in ("KeyConditionExpression", "ProjectionExpression")
        )
        used = set(re.findall(r"[#:][A-Za-z0-9_]+", kept))
        for part in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            if part in again:
                again[part] = {k: v for k, v in again[part].items() if k in used}
                if not again[part]:
                    del again[part]
        again["ReturnConsumedCapacity"] = "NONE"
        with self._uncounted():
            method = self._peek().query if operation == "Query" else self._peek().scan
            return list(method(**again).get("Items", []))

    def _index_writes(self, table: str, before: Json | None, after: Json | None) -> float:
        units = 0
        table_keys = self._spec(table).keys
        for index in self._spec(table).indexes:
            old = _index_entry(index, table_keys, before)
            new = _index_entry(index, table_keys, after)
            if old == new:
                continue
            if old is None or new is None:
                units += write_units(item_size(old or new))
            elif any(old.get(k) != new.get(k) for k in index.keys):
                units += write_units(item_size(old)) + write_units(item_size(new))
            else:
                units += write_units(max(item_size(old), item_size(new)))
        return float(units)


def _index_entry(index: IndexSpec, table_keys: tuple[str, ...], item: Json | None) -> Json | None:
    """What the index holds for this item (None when the item lacks the index's keys)."""
    if item is None or any(k not in item for k in index.keys):
        return None
    if index.projection == "ALL":
        return item
    kept = set(index.keys) | set(table_keys)
    if index.projection == "INCLUDE":
        kept |= set(index.non_key)
    return {k: v for k, v in item.items() if k in kept}


def _tables(params: Json) -> tuple[str, ...]:
    if "TableName" in params:
        return (params["TableName"],)
    if "RequestItems" in params:
        return tuple(params["RequestItems"])
    names = []
    for entry in params.get("TransactItems", []):
        for action in entry.values():
            names.append(action["TableName"])
    return tuple(dict.fromkeys(names))


def _writes(operation: str, params: Json, key_of: Any) -> Iterator[tuple[str, Json, Json, int]]:
    """(table, key, new item or {}, unit factor) of every item a write request touches."""
    if operation == "PutItem":
        yield params["TableName"], key_of(params["TableName"], params["Item"]), params["Item"], 1
    elif operation in ("UpdateItem", "DeleteItem"):
        yield params["TableName"], params["Key"], {}, 1
    elif operation == "BatchWriteItem":
        for table, entries in params["RequestItems"].items():
            for entry in entries:
                if "PutRequest" in entry:
                    item = entry["PutRequest"]["Item"]
                    yield table, key_of(table, item), item, 1
                else:
                    yield table, entry["DeleteRequest"]["Key"], {}, 1
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            ((kind, action),) = entry.items()
            table = action["TableName"]
            if kind == "Put":
                yield table, key_of(table, action["Item"]), action["Item"], 2
            else:  # Update, Delete, ConditionCheck
                yield table, action["Key"], {}, 2
