"""The outbox table's stream, read through the DynamoDB Streams API.

In AWS nothing of ours reads the stream: Lambda's event source mapping does, and hands batches to
the ``outbox_relay`` function. Outside AWS (``apim-users dev``, the test stacks, the in-process
tests) this reader plays that part against moto, whose server and ``mock_aws`` both serve the
Streams API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.store.models import OutboxItem

# get_records answers at most this many records per call.
_PAGE = 1000
# Records a closed shard may still hand out, and errors after which a shard is looked up again.
_LOST_ITERATOR = frozenset(
    {"ExpiredIteratorException", "TrimmedDataAccessException", "ResourceNotFoundException"}
)


@dataclass
class _Shard:
    iterator: str | None = None
    last_sequence: str | None = None
    closed: bool = False


class OutboxStream:
    """Every record the outbox table's stream gained since the last ``read``, shard by shard.

    Follows the table, not one stream: a table made again (a moto reset, a new test) has a new
    stream, which is then read from its start. Not thread-safe: one reader per follower.
    """

    def __init__(self, region: str, endpoint_url: str | None = None) -> None:
        # None lets botocore resolve the endpoint (AWS_ENDPOINT_URL names the moto server in
        # development); under mock_aws the Streams endpoint has to be named explicitly.
        self._region = region
        self._endpoint_url = endpoint_url
        self._client: Any = None
        self._arn: str | None = None
        self._shards: dict[str, _Shard] = {}
        self._finished: set[str] = set()

    def _streams(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "dynamodbstreams", region_name=self._region, endpoint_url=self._endpoint_url
            )
        return self._client

    def read(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """New records, oldest first within each shard; at most about ``limit``."""
        arn = OutboxItem.describe_table().get("LatestStreamArn")
        if not arn:
            return []
        if arn != self._arn:
            self._arn, self._shards, self._finished = arn, {}, set()
        if not self._shards or any(s.closed for s in self._shards.values()):
            self._discover(arn)
        found: list[dict[str, Any]] = []
        for shard_id, shard in list(self._shards.items()):
            # A fresh iterator each read, from the last record seen: moto's iterators hold the
            # shard object they were made from, which a cancelled transaction's rollback
            # replaces (with a copy from before it), so a kept one would miss what comes next.
            shard.iterator = None
            while not shard.closed and len(found) < limit:
                page = self._page(arn, shard_id, shard)
                found += page
                if not page:
                    break
        return found

    def _discover(self, arn: str) -> None:
        streams = self._streams()
        kwargs: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = streams.describe_stream(**kwargs)["StreamDescription"]
            for shard in description.get("Shards", []):
                if shard["ShardId"] not in self._finished:
                    self._shards.setdefault(shard["ShardId"], _Shard())
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        # A closed shard that gave all it had is done; its children were added above.
        self._finished |= {k for k, v in self._shards.items() if v.closed}
        self._shards = {k: v for k, v in self._shards.items() if not v.closed}

    def _page(self, arn: str, shard_id: str, shard: _Shard) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        streams = self._streams()
        try:
            if shard.iterator is None:
                where: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
                if shard.last_sequence is not None:
                    where = {
                        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": shard.last_sequence,
                    }
                shard.iterator = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, **where
                )["ShardIterator"]
            answer = streams.get_records(ShardIterator=shard.iterator, Limit=_PAGE)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _LOST_ITERATOR:
                shard.iterator = None  # asked for again from the last record seen, next read
                return []
            raise
        records: list[dict[str, Any]] = answer.get("Records", [])
        if records:
            shard.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
        shard.iterator = answer.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
        return records
