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


class DynamoStore:
    """Built once per container; PynamoDB caches one connection per model.

    The models must be bound to the settings' tables first (``bind_tables``).
    """

    def __init__(self, settings: Settings) -> None:
        self._region = settings.region
        self._connection: Connection | None = None
        self.users = UserRepository()
        self.links = LinkRepository()
        self.outbox = OutboxRepository()
        self.counters = CounterRepository()
        self.products = ProductRepository()
        self.subscriptions = SubscriptionRepository()
        self.audit = AuditRepository(timedelta(days=settings.audit_retention_days))
        self.portal = PortalRepository()

    def transaction(self) -> DynamoTx:
        if self._connection is None:
            self._connection = Connection(region=self._region)
        return DynamoTx(self._connection)
