"""The DynamoDB store: every repository, and transactions that span them."""

from __future__ import annotations

from datetime import timedelta

from pynamodb.connection import Connection

from chalicelib.config import Settings
from chalicelib.store.audit import AuditRepository
from chalicelib.store.counters import CounterRepository
from chalicelib.store.links import LinkRepository
from chalicelib.store.outbox import OutboxRepository
from chalicelib.store.portal import PortalRepository
from chalicelib.store.products import ProductRepository
from chalicelib.store.subscriptions import SubscriptionRepository
from chalicelib.store.tx import DynamoTx
from chalicelib.store.users import UserRepository

# The transactions' connection, one per region and container, as PynamoDB keeps one per model:
# a Services built again (a settings reload, each test) reuses its botocore client.
_connections: dict[str, Connection] = {}


class DynamoStore:
    """Built once per container; PynamoDB caches one connection per model.

    The models must be bound to the settings' tables first (``bind_tables``).
    """

    def __init__(self, settings: Settings) -> None:
        self._region = settings.region
        self.users = UserRepository()
        self.links = LinkRepository()
        self.outbox = OutboxRepository()
        self.counters = CounterRepository()
        self.products = ProductRepository()
        self.subscriptions = SubscriptionRepository()
        self.audit = AuditRepository(timedelta(days=settings.audit_retention_days))
        self.portal = PortalRepository()

    def transaction(self) -> DynamoTx:
        connection = _connections.get(self._region)
        if connection is None:
            connection = _connections.setdefault(self._region, Connection(region=self._region))
        return DynamoTx(connection)
