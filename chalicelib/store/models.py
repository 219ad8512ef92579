"""PynamoDB models of every table, bound to their configured names on first use."""

from __future__ import annotations

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import Settings

LIST_PARTITION = "user"


class IdentityMap(MapAttribute):
    """One ``{provider, id}`` identity."""

    provider = UnicodeAttribute()
    id = UnicodeAttribute()


class UserListIndex(GlobalSecondaryIndex["UserItem"]):
    """All users ordered by id: lists page through it with a Query, never a Scan."""

    class Meta:
        index_name = "by-name"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class UserEmailIndex(GlobalSecondaryIndex["UserItem"]):
    """Users by normalized email: ``$filter=email eq`` is one Query."""

    class Meta:
        index_name = "by-email"
        projection = AllProjection()

    email_key = UnicodeAttribute(hash_key=True)


class UserItem(Model):
    """A developer account."""

    class Meta:
        table_name = "users"
        billing_mode = "PAY_PER_REQUEST"

    id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default=LIST_PARTITION)
    email = UnicodeAttribute()
    email_key = UnicodeAttribute()
    first_name = UnicodeAttribute()
    last_name = UnicodeAttribute()
    state = UnicodeAttribute()
    note = UnicodeAttribute(null=True)
    registration_date = UTCDateTimeAttribute()
    identities = ListAttribute(of=IdentityMap, default=list)
    version = NumberAttribute()
    password_hash = UnicodeAttribute(null=True)
    # Changed on block, delete and password change: every user token signed before dies.
    token_epoch = UnicodeAttribute(null=True)

    list_index = UserListIndex()
    email_index = UserEmailIndex()


class EmailLockItem(Model):
    """Claims a normalized email for one user; written in the same transaction as the user."""

    class Meta:
        table_name = "email-locks"
        billing_mode = "PAY_PER_REQUEST"

    email_key = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()


class LinkTokenIndex(GlobalSecondaryIndex["LinkItem"]):
    """Links by the SHA-256 of their token: how a clicked link finds its record."""

    class Meta:
        index_name = "by-token"
        projection = AllProjection()

    token_hash = UnicodeAttribute(hash_key=True)


class LinkDueIndex(GlobalSecondaryIndex["LinkItem"]):
    """Sparse: only pending links carry ``due``, so the sweep reads just what may have expired."""

    class Meta:
        index_name = "due"
        projection = AllProjection()

    due = UnicodeAttribute(hash_key=True)
    expires_at = UTCDateTimeAttribute(range_key=True)


class LinkItem(Model):
    """An invitation, sign-up confirmation or reset link; only its token's hash is stored."""

    class Meta:
        table_name = "links"
        billing_mode = "PAY_PER_REQUEST"

    user_id = UnicodeAttribute(hash_key=True)
    link_id = UnicodeAttribute(range_key=True)
    purpose = UnicodeAttribute()
    state = UnicodeAttribute()
    token_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    due = UnicodeAttribute(null=True)
    # Garbage collection only: expiry is decided at read time from expires_at.
    purge_at = TTLAttribute(null=True)

    by_token = LinkTokenIndex()
    due_index = LinkDueIndex()


class OutboxDueIndex(GlobalSecondaryIndex["OutboxItem"]):
    """Sparse: only queued messages carry ``due``, ordered by their next attempt."""

    class Meta:
        index_name = "due"
        projection = AllProjection()

    due = UnicodeAttribute(hash_key=True)
    next_attempt_at = UTCDateTimeAttribute(range_key=True)


class OutboxItem(Model):
    """An email recorded with the change that causes it; sent at once, retried by the sweep."""

    class Meta:
        table_name = "outbox"
        billing_mode = "PAY_PER_REQUEST"

    message_id = UnicodeAttribute(hash_key=True)
    template = UnicodeAttribute()
    to_email = UnicodeAttribute()
    user_id = UnicodeAttribute()
    values = MapAttribute(default=dict)
    link_user_id = UnicodeAttribute(null=True)
    link_id = UnicodeAttribute(null=True)
    state = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    next_attempt_at = UTCDateTimeAttribute()
    created_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    due = UnicodeAttribute(null=True)
    purge_at = TTLAttribute(null=True)

    due_index = OutboxDueIndex()


class CounterItem(Model):
    """A fixed-window counter (throttling); one UpdateItem counts and reads it."""

    class Meta:
        table_name = "counters"
        billing_mode = "PAY_PER_REQUEST"

    key = UnicodeAttribute(hash_key=True)
    count = NumberAttribute(default=0)
    purge_at = TTLAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (UserItem, EmailLockItem, LinkItem, OutboxItem, CounterItem)


def bind(settings: Settings) -> None:
    """Point every model at its configured table and region (cached connections are dropped)."""
    names = {
        UserItem: settings.users_table,
        EmailLockItem: settings.email_locks_table,
        LinkItem: settings.links_table,
        OutboxItem: settings.outbox_table,
        CounterItem: settings.counters_table,
    }
    for model, name in names.items():
        if model.Meta.table_name != name or getattr(model.Meta, "region", None) != settings.region:
            model.Meta.table_name = name
            model.Meta.region = settings.region
            model._connection = None


def create_tables(settings: Settings) -> list[str]:
    """Create every missing table (idempotent); returns the names of those created."""
    bind(settings)
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
    return created
