"""The portal repository: stored portal settings, and publisher notifications' recipients."""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.portal import (
    MAX_RECIPIENTS,
    DelegationSettings,
    NotificationName,
    Recipient,
    RecipientGone,
    RecipientKind,
    RecipientTaken,
    Setting,
    SettingName,
    SignInSettings,
    SignUpSettings,
    TermsOfService,
    recipient_limit,
)
from chalicelib.domain.tx import Tx
from chalicelib.errors import PreconditionFailed
from chalicelib.store.models import PortalItem
from chalicelib.store.tx import dynamodb_errors, writes

SETTINGS = "settings"
RECIPIENTS = "recipients"
COUNTS = "counts"


def _to_setting(item: PortalItem) -> Setting:
    name = SettingName(item.sk)
    version = int(item.version or 1)
    if name is SettingName.SIGNIN:
        return SignInSettings(enabled=bool(item.enabled), version=version)
    if name is SettingName.SIGNUP:
        return SignUpSettings(
            enabled=bool(item.enabled),
            terms=TermsOfService(
                text=item.terms_text,
                enabled=bool(item.terms_enabled),
                consent_required=bool(item.terms_consent_required),
            ),
            version=version,
        )
    return DelegationSettings(
        url=item.url,
        validation_key=item.validation_key,
        subscriptions_enabled=bool(item.subscriptions_enabled),
        user_registration_enabled=bool(item.user_registration_enabled),
        version=version,
    )


def setting_name_of(setting: Setting) -> SettingName:
    if isinstance(setting, SignInSettings):
        return SettingName.SIGNIN
    if isinstance(setting, SignUpSettings):
        return SettingName.SIGNUP
    return SettingName.DELEGATION


def _to_item(setting: Setting, now: datetime) -> PortalItem:
    item = PortalItem(
        pk=SETTINGS, sk=setting_name_of(setting).value, version=setting.version, updated_at=now
    )
    if isinstance(setting, SignInSettings):
        item.enabled = setting.enabled
    elif isinstance(setting, SignUpSettings):
        item.enabled = setting.enabled
        item.terms_text = setting.terms.text
        item.terms_enabled = setting.terms.enabled
        item.terms_consent_required = setting.terms.consent_required
    else:
        item.url = setting.url
        item.validation_key = setting.validation_key
        item.subscriptions_enabled = setting.subscriptions_enabled
        item.user_registration_enabled = setting.user_registration_enabled
    return item


def _recipient_sk(recipient: Recipient) -> str:
    return f"{recipient.notification.value}#{recipient.kind.value}#{recipient.key}"


def _to_recipient(item: PortalItem) -> Recipient:
    notification, kind, _ = item.sk.split("#", 2)
    return Recipient(NotificationName(notification), RecipientKind(kind), item.value or "")


def _setting_changed() -> Exception:
    return PreconditionFailed("The settings were changed meanwhile; read them again.")


class PortalRepository:
    """Settings by name (no item: the default) and recipients in one partition."""

    def setting(self, name: SettingName) -> Setting | None:
        with dynamodb_errors():
            try:
                return _to_setting(PortalItem.get(SETTINGS, name.value, consistent_read=True))
            except PortalItem.DoesNotExist:
                return None

    def settings(self) -> dict[SettingName, Setting]:
        """Every stored setting: one Query of three items at most."""
        with dynamodb_errors():
            return {
                SettingName(item.sk): _to_setting(item)
                for item in PortalItem.query(SETTINGS, consistent_read=True)
            }

    def stage_put_setting(
        self, tx: Tx, new: Setting, old_version: int | None, now: datetime
    ) -> None:
        """Save ``new`` if the stored one still has ``old_version`` (None: none is stored)."""
        condition = (
            PortalItem.pk.does_not_exist()
            if old_version is None
            else PortalItem.version == old_version
        )
        writes(tx).put(_to_item(new, now), condition, _setting_changed)

    def recipients(self, notification: NotificationName | None = None) -> list[Recipient]:
        """One notification's recipients (users first, then addresses), or every one's; one
        Query, bounded by MAX_RECIPIENTS per notification."""
        prefix = f"{notification.value}#" if notification else None
        limit = MAX_RECIPIENTS * (1 if notification else len(NotificationName)) + 1
        with dynamodb_errors():
            items = PortalItem.query(
                RECIPIENTS,
                PortalItem.sk.startswith(prefix) if prefix else None,
                consistent_read=True,
                limit=limit,
            )
            return [_to_recipient(item) for item in items]

    def has_recipient(self, recipient: Recipient) -> bool:
        with dynamodb_errors():
            try:
                PortalItem.get(RECIPIENTS, _recipient_sk(recipient), consistent_read=True)
            except PortalItem.DoesNotExist:
                return False
            return True

    def stage_add_recipient(self, tx: Tx, recipient: Recipient) -> None:
        """Add the recipient, counted; fails with RecipientTaken, or RecipientLimit when the
        notification has MAX_RECIPIENTS already."""
        item = PortalItem(pk=RECIPIENTS, sk=_recipient_sk(recipient), value=recipient.value)
        w = writes(tx)
        w.put(
            item,
            PortalItem.pk.does_not_exist(),
            lambda: RecipientTaken(recipient.key),
        )
        w.update(
            PortalItem(pk=COUNTS, sk=recipient.notification.value),
            [PortalItem.recipients.add(1)],
            PortalItem.recipients.does_not_exist() | (PortalItem.recipients < MAX_RECIPIENTS),
            recipient_limit,
        )

    def stage_remove_recipient(self, tx: Tx, recipient: Recipient) -> None:
        """Remove the recipient, counted; fails with RecipientGone if it is not there."""
        w = writes(tx)
        w.delete(
            PortalItem(pk=RECIPIENTS, sk=_recipient_sk(recipient)),
            PortalItem.pk.exists(),
            lambda: RecipientGone(recipient.key),
        )
        w.update(
            PortalItem(pk=COUNTS, sk=recipient.notification.value),
            [PortalItem.recipients.add(-1)],
            None,
            None,
        )
