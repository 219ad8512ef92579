"""PynamoDB models of every table, bound to their configured names on first use."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
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


class IdentityMap(MapAttribute[str, Any]):
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


# The console's Users list has one index per order (domain.users.order_key): a page in any
# order, either way, is one Query reading the page's items plus one.
class UserNameOrderIndex(GlobalSecondaryIndex["UserItem"]):
    """All users by name as shown (case and accents ignored), then id."""

    class Meta:
        index_name = "by-display-name"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    sort_name = UnicodeAttribute(range_key=True)


class UserEmailOrderIndex(GlobalSecondaryIndex["UserItem"]):
    """All users by normalized email (unique: the email locks make it so)."""

    class Meta:
        index_name = "by-email-order"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    email_key = UnicodeAttribute(range_key=True)


class UserStateIndex(GlobalSecondaryIndex["UserItem"]):
    """All users by state, then name: one state's users are a key prefix (``pending\x1f``)."""

    class Meta:
        index_name = "by-state"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    sort_state = UnicodeAttribute(range_key=True)


class UserRegisteredIndex(GlobalSecondaryIndex["UserItem"]):
    """All users by registration date, then id."""

    class Meta:
        index_name = "by-registered"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    sort_registered = UnicodeAttribute(range_key=True)


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
    # The id of the one reset link that may be used (domain.users.User.reset_link).
    reset_link = UnicodeAttribute(null=True)
    # The keys of the sorted indexes (domain.users.order_key); written with every user.
    sort_name = UnicodeAttribute(null=True)
    sort_state = UnicodeAttribute(null=True)
    sort_registered = UnicodeAttribute(null=True)

    list_index = UserListIndex()
    email_index = UserEmailIndex()
    name_order = UserNameOrderIndex()
    email_order = UserEmailOrderIndex()
    state_order = UserStateIndex()
    registered_order = UserRegisteredIndex()


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
    email_key = UnicodeAttribute(null=True)
    new_email = UnicodeAttribute(null=True)
    # The account's token epoch at issue (absent on links made before links were bound to it).
    token_epoch = UnicodeAttribute(null=True)
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
    """An email recorded with the change that causes it.

    The table's stream (new images) triggers the relay, which sends each new message once; the
    sweep retries what the relay could not send.
    """

    class Meta:
        table_name = "outbox"
        billing_mode = "PAY_PER_REQUEST"
        stream_view_type = "NEW_IMAGE"

    message_id = UnicodeAttribute(hash_key=True)
    template = UnicodeAttribute()
    to_email = UnicodeAttribute()
    user_id = UnicodeAttribute()
    values: MapAttribute[str, Any] = MapAttribute(default=dict)
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
    # A publisher notification's email or a BCC copy (Message.publisher); absent: a developer's.
    publisher = BooleanAttribute(null=True)
    # Message.held: left by the stream's relay for the process that recorded it.
    held = BooleanAttribute(null=True)

    due_index = OutboxDueIndex()


class CounterItem(Model):
    """A fixed-window counter (throttling); one UpdateItem counts and reads it."""

    class Meta:
        table_name = "counters"
        billing_mode = "PAY_PER_REQUEST"

    key = UnicodeAttribute(hash_key=True)
    # Stored as "count"; named otherwise here because Model.count is PynamoDB's own method.
    hits = NumberAttribute(default=0, attr_name="count")
    purge_at = TTLAttribute(null=True)


GROUP_LIST_PARTITION = "group"


class GroupListIndex(GlobalSecondaryIndex["GroupItem"]):
    """Sparse: only group items carry ``kind``; lists page through it by key, never a Scan."""

    class Meta:
        index_name = "by-name"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)


class GroupMemberIndex(GlobalSecondaryIndex["GroupItem"]):
    """Sparse: only membership items carry ``member``; a user's groups are one Query."""

    class Meta:
        index_name = "by-member"
        projection = AllProjection()

    member = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)


class GroupItem(Model):
    """One table for custom groups and their memberships.

    A group is ``pk = group#<key>, sk = #group``; each member is ``pk = group#<key>,
    sk = user#<userId>`` in the same partition, so a group's members are one Query. Built-in
    groups are not stored, nor is membership in Developers (every account is in it).
    """

    class Meta:
        table_name = "groups"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # The group's key (its id in lower case) on both kinds of item: the indexes' range key.
    sort_key = UnicodeAttribute()
    group_id = UnicodeAttribute()
    generation = NumberAttribute()
    # Group items only.
    kind = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    group_type = UnicodeAttribute(null=True)
    external_id = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    # Membership items only.
    member = UnicodeAttribute(null=True)
    user_since = UTCDateTimeAttribute(null=True)
    added_at = UTCDateTimeAttribute(null=True)

    list_index = GroupListIndex()
    member_index = GroupMemberIndex()


class TemplateParameterMap(MapAttribute[str, Any]):
    """One ``{name, title, description}`` parameter of an email template."""

    name = UnicodeAttribute()
    title = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)


class TemplateItem(Model):
    """An email template an admin changed; no item means the built-in default."""

    class Meta:
        table_name = "templates"
        billing_mode = "PAY_PER_REQUEST"

    # The camelCase template name (templates/email/<name>.html).
    name = UnicodeAttribute(hash_key=True)
    subject = UnicodeAttribute()
    body = UnicodeAttribute()
    # Derived from the body when an admin sends one (APIM's contract has only the HTML body).
    text = UnicodeAttribute()
    title = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    parameters = ListAttribute(of=TemplateParameterMap, default=list)
    version = NumberAttribute()
    updated_at = UTCDateTimeAttribute()


class ProductListIndex(GlobalSecondaryIndex["ProductItem"]):
    """Sparse: only product items carry ``kind``; lists page through it by id."""

    class Meta:
        index_name = "by-name"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute(range_key=True)


class ProductGroupIndex(GlobalSecondaryIndex["ProductItem"]):
    """Sparse: only product-group links carry ``group_key``; a group's products are one Query."""

    class Meta:
        index_name = "by-group"
        projection = AllProjection()

    group_key = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute(range_key=True)


class ProductItem(Model):
    """Products (``sk = #product``) and the groups that may see them (``sk = group#<id>``)."""

    class Meta:
        table_name = "products"
        billing_mode = "PAY_PER_REQUEST"

    product_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    terms = UnicodeAttribute(null=True)
    subscription_required = BooleanAttribute(null=True)
    approval_required = BooleanAttribute(null=True)
    subscriptions_limit = NumberAttribute(null=True)
    state = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    group_key = UnicodeAttribute(null=True)
    group_id = UnicodeAttribute(null=True)

    list_index = ProductListIndex()
    group_index = ProductGroupIndex()


class SubscriptionListIndex(GlobalSecondaryIndex["SubscriptionItem"]):
    """Sparse: subscriptions only (not limit counters), ordered by id."""

    class Meta:
        index_name = "by-name"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    sid = UnicodeAttribute(range_key=True)


class SubscriptionOwnerIndex(GlobalSecondaryIndex["SubscriptionItem"]):
    """A user's subscriptions: one Query."""

    class Meta:
        index_name = "by-owner"
        projection = AllProjection()

    owner_id = UnicodeAttribute(hash_key=True)
    sid = UnicodeAttribute(range_key=True)


class SubscriptionProductIndex(GlobalSecondaryIndex["SubscriptionItem"]):
    """A product's subscriptions: one Query (deleting a product checks it)."""

    class Meta:
        index_name = "by-product"
        projection = AllProjection()

    product_id = UnicodeAttribute(hash_key=True)
    sid = UnicodeAttribute(range_key=True)


class SubscriptionItem(Model):
    """A subscription (``kind`` set), or a per-user, per-product counter of live subscriptions."""

    class Meta:
        table_name = "subscriptions"
        billing_mode = "PAY_PER_REQUEST"

    sid = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(null=True)
    owner_id = UnicodeAttribute(null=True)
    scope = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)
    state_comment = UnicodeAttribute(null=True)
    allow_tracing = BooleanAttribute(null=True)
    created_date = UTCDateTimeAttribute(null=True)
    start_date = UTCDateTimeAttribute(null=True)
    expiration_date = UTCDateTimeAttribute(null=True)
    end_date = UTCDateTimeAttribute(null=True)
    notification_date = UTCDateTimeAttribute(null=True)
    # Retrievable through listSecrets, as in APIM; encrypted at rest by DynamoDB, never in a GET.
    primary_key = UnicodeAttribute(null=True)
    secondary_key = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    live = NumberAttribute(null=True)

    list_index = SubscriptionListIndex()
    owner_index = SubscriptionOwnerIndex()
    product_index = SubscriptionProductIndex()


class KeyItem(Model):
    """A subscription key by its SHA-256, with what a check needs: one GetItem answers it."""

    class Meta:
        table_name = "subscription-keys"
        billing_mode = "PAY_PER_REQUEST"

    key_hash = UnicodeAttribute(hash_key=True)
    sid = UnicodeAttribute()
    slot = UnicodeAttribute()
    owner_id = UnicodeAttribute(null=True)
    scope = UnicodeAttribute()
    state = UnicodeAttribute()


class AuditTimeIndex(GlobalSecondaryIndex["AuditItem"]):
    """Every event of a month, newest first: ``GET /auditEvents`` pages with one Query each."""

    class Meta:
        index_name = "by-month"
        projection = AllProjection()

    month = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)


class AuditItem(Model):
    """An audit event, under the stream of its target (``user#<id>``, ``group#<id>``, ...)."""

    class Meta:
        table_name = "audit"
        billing_mode = "PAY_PER_REQUEST"

    stream = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    month = UnicodeAttribute()
    time = UTCDateTimeAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    actor_kind = UnicodeAttribute()
    address = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    target_type = UnicodeAttribute()
    target_id = UnicodeAttribute()
    target_email = UnicodeAttribute(null=True)
    # JSON: {field: {old, new}}; DynamoDB maps would reject values of mixed types.
    changes = UnicodeAttribute(null=True)
    purge_at = TTLAttribute(null=True)

    by_month = AuditTimeIndex()


class PortalItem(Model):
    """The developer portal's settings and the recipients of publisher notifications.

    ``pk = settings, sk = signin|signup|delegation``: a stored setting (none: the default);
    ``pk = recipients, sk = <Notification>#user#<id>`` or ``#email#<address, lower case>``: one
    recipient, so every notification's recipients are one Query; ``pk = counts,
    sk = <Notification>``: how many recipients it has, which a conditional update keeps bounded.
    """

    class Meta:
        table_name = "portal"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    version = NumberAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    # Settings.
    enabled = BooleanAttribute(null=True)
    terms_text = UnicodeAttribute(null=True)
    terms_enabled = BooleanAttribute(null=True)
    terms_consent_required = BooleanAttribute(null=True)
    url = UnicodeAttribute(null=True)
    # Shown only by listSecrets; encrypted at rest by DynamoDB, never in a GET.
    validation_key = UnicodeAttribute(null=True)
    subscriptions_enabled = BooleanAttribute(null=True)
    user_registration_enabled = BooleanAttribute(null=True)
    # Recipients: the user id or the address as given; counts: the number of recipients.
    value = UnicodeAttribute(null=True)
    recipients = NumberAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    UserItem,
    EmailLockItem,
    LinkItem,
    OutboxItem,
    CounterItem,
    GroupItem,
    TemplateItem,
    ProductItem,
    SubscriptionItem,
    KeyItem,
    AuditItem,
    PortalItem,
)


def bind_tables(settings: Settings) -> None:
    """Point every model at its configured table and region (cached connections are dropped)."""
    names = {
        UserItem: settings.users_table,
        EmailLockItem: settings.email_locks_table,
        LinkItem: settings.links_table,
        OutboxItem: settings.outbox_table,
        CounterItem: settings.counters_table,
        GroupItem: settings.groups_table,
        TemplateItem: settings.templates_table,
        ProductItem: settings.products_table,
        SubscriptionItem: settings.subscriptions_table,
        KeyItem: settings.subscription_keys_table,
        AuditItem: settings.audit_table,
        PortalItem: settings.portal_table,
    }
    for model, name in names.items():
        if model.Meta.table_name != name or getattr(model.Meta, "region", None) != settings.region:
            model.Meta.table_name = name
            model.Meta.region = settings.region
            model._connection = None


def create_tables(settings: Settings) -> list[str]:
    """Create every missing table (idempotent); returns the names of those created."""
    bind_tables(settings)
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
    return created
