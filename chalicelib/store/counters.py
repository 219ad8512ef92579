"""Fixed-window counters for throttling: one UpdateItem counts, one BatchGet reads several."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.store.models import CounterItem
from chalicelib.store.tx import dynamodb_errors


class CounterRepository:
    """Counters expire by TTL a day after their window; reads never trust TTL (the key has it)."""

    def add(self, key: str, window_end: datetime) -> int:
        """Count one, and return the new count."""
        item = CounterItem(key=key)
        with dynamodb_errors():
            item.update(
                actions=[
                    CounterItem.hits.add(1),
                    CounterItem.purge_at.set(window_end + timedelta(days=1)),
                ]
            )
        return int(item.hits)

    def read(self, keys: list[str]) -> dict[str, int]:
        """Current counts (0 for a key never counted), in one BatchGetItem."""
        with dynamodb_errors():
            found = {i.key: int(i.hits) for i in CounterItem.batch_get(keys)}
        return {k: found.get(k, 0) for k in keys}
