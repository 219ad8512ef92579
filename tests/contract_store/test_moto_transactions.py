"""The suite's moto transactions (tests/moto_transactions.py): all-or-nothing like moto's own."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.config import get_settings
from tests.moto_transactions import moto_rollback
from tests.support import STREAMS_ENDPOINT


@pytest.fixture
def ddb(aws):
    return boto3.client("dynamodb", region_name=get_settings().region)


def s(value: str) -> dict[str, str]:
    return {"S": value}


def seed(ddb, run: str) -> None:
    """Items a transaction updates, deletes or leaves alone, in a table without a range key, in
    one with a stream (outbox) and in one with a range key (audit)."""
    settings = get_settings()
    for user_id in ("a", "b", "untouched"):
        ddb.put_item(
            TableName=settings.users_table,
            Item={"id": s(f"{run}-{user_id}"), "note": s("before"), "version": {"N": "1"}},
        )
    for message_id in ("old", "untouched"):
        ddb.put_item(
            TableName=settings.outbox_table,
            Item={"message_id": s(f"{run}-{message_id}"), "state": s("queued")},
        )
    ddb.put_item(
        TableName=settings.audit_table,
        Item={"stream": s(f"user#{run}"), "event_id": s("e1"), "action": s("create")},
    )


def transaction(run: str, fail: bool) -> list[dict[str, Any]]:
    """Every kind of write, on existing and new items; with ``fail``, one condition in the middle
    fails (moto goes on with the rest, then cancels all)."""
    settings = get_settings()
    users, outbox, audit = settings.users_table, settings.outbox_table, settings.audit_table
    check = "attribute_not_exists(id)" if fail else "attribute_exists(id)"
    return [
        {
            "Update": {
                "TableName": users,
                "Key": {"id": s(f"{run}-a")},
                "UpdateExpression": "SET note = :n, version = version + :one",
                "ExpressionAttributeValues": {":n": s("after"), ":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": users, "Key": {"id": s(f"{run}-b")}}},
        {
            "ConditionCheck": {
                "TableName": users,
                "Key": {"id": s(f"{run}-untouched")},
                "ConditionExpression": check,
            }
        },
        {"Put": {"TableName": outbox, "Item": {"message_id": s(f"{run}-new"), "state": s("q")}}},
        {
            "Update": {
                "TableName": outbox,
                "Key": {"message_id": s(f"{run}-old")},
                "UpdateExpression": "SET #s = :s",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":s": s("sent")},
            }
        },
        # A new item under an existing partition, and an update that creates its item.
        {
            "Put": {
                "TableName": audit,
                "Item": {"stream": s(f"user#{run}"), "event_id": s("e2"), "action": s("block")},
            }
        },
        {
            "Update": {
                "TableName": audit,
                "Key": {"stream": s(f"group#{run}"), "event_id": s("e1")},
                "UpdateExpression": "SET #a = :a",
                "ExpressionAttributeNames": {"#a": "action"},
                "ExpressionAttributeValues": {":a": s("create")},
            }
        },
    ]


def everything(ddb) -> dict[str, list[Any]]:
    """Every item of the three tables, and every record of the outbox stream."""
    settings = get_settings()
    state: dict[str, list[Any]] = {}
    for table in (settings.users_table, settings.outbox_table, settings.audit_table):
        items = ddb.scan(TableName=table)["Items"]
        state[table] = sorted(items, key=repr)
    streams = boto3.client(
        "dynamodbstreams", region_name=settings.region, endpoint_url=STREAMS_ENDPOINT
    )
    arn = ddb.describe_table(TableName=settings.outbox_table)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    state["stream"] = [(r["eventName"], r["dynamodb"]["Keys"]) for r in records]
    return state


def cancelled(ddb, items: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=items)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    return [r["Code"] for r in raised.value.response["CancellationReasons"]]


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(ddb):
    seed(ddb, "ours")
    before = everything(ddb)
    reasons = cancelled(ddb, transaction("ours", fail=True))
    assert everything(ddb) == before
    # The same transaction under moto's own rollback (deep copies of the tables): the same
    # answer, and again nothing changed.
    seed(ddb, "moto")
    with moto_rollback():
        before = everything(ddb)
        assert cancelled(ddb, transaction("moto", fail=True)) == reasons
        assert everything(ddb) == before
    assert reasons == ["None", "None", "ConditionalCheckFailed", "None", "None", "None", "None"]


def test_a_committed_transaction_writes_every_item_and_its_stream_records(ddb):
    settings = get_settings()
    seed(ddb, "ok")
    before = everything(ddb)
    ddb.transact_write_items(TransactItems=transaction("ok", fail=False))
    after = everything(ddb)
    users = {i["id"]["S"]: i for i in after[settings.users_table]}
    assert set(users) == {"ok-a", "ok-untouched"}
    assert (users["ok-a"]["note"], users["ok-a"]["version"]) == (s("after"), {"N": "2"})
    outbox = {i["message_id"]["S"]: i["state"]["S"] for i in after[settings.outbox_table]}
    assert outbox == {"ok-new": "q", "ok-old": "sent", "ok-untouched": "queued"}
    audit = {(i["stream"]["S"], i["event_id"]["S"]) for i in after[settings.audit_table]}
    assert audit == {("user#ok", "e1"), ("user#ok", "e2"), ("group#ok", "e1")}
    assert after["stream"] == before["stream"] + [
        ("INSERT", {"message_id": s("ok-new")}),
        ("MODIFY", {"message_id": s("ok-old")}),
    ]


def test_a_transaction_refused_half_way_writes_nothing(ddb):
    """Two operations on one item: moto raises while some writes are done; none stays."""
    settings = get_settings()
    seed(ddb, "twice")
    before = everything(ddb)
    items = transaction("twice", fail=False)
    items.append({"Delete": {"TableName": settings.users_table, "Key": {"id": s("twice-a")}}})
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=items)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert everything(ddb) == before
