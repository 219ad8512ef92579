"""Portal settings (sign-in, sign-up, delegation) and publisher notifications' recipients."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from chalicelib import context
from chalicelib.domain.audit import diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import (
    Expected,
    check_expected,
    next_version,
    save_over_what_was_read,
)
from chalicelib.domain.portal import (
    DEFAULTS,
    NOTIFICATIONS,
    DelegationSettings,
    NotificationName,
    Recipient,
    RecipientGone,
    RecipientKind,
    RecipientTaken,
    Setting,
    SettingChanges,
    SettingName,
    SignInSettings,
    SignUpSettings,
    apply_changes,
)
from chalicelib.domain.users import EMAIL_MAX
from chalicelib.errors import FieldProblem, ResourceNotFound, ValidationFailed
from chalicelib.services.audit import Audit, Target
from chalicelib.services.ports import Store

# Rounds an unconditional PUT may lose to concurrent saves before it gives up (412).
_SAVE_ROUNDS = 20


@dataclass(frozen=True)
class NotificationView:
    """A notification with its recipients (users, then addresses)."""

    name: NotificationName
    title: str
    description: str
    users: tuple[str, ...]
    emails: tuple[str, ...]


def _audited(setting: Setting) -> dict[str, Any]:
    """What an audit event may say about a setting: everything but the key's value."""
    if isinstance(setting, SignInSettings):
        return {"enabled": setting.enabled}
    if isinstance(setting, SignUpSettings):
        return {
            "enabled": setting.enabled,
            "termsOfService.text": f"{len(setting.terms.text or '')} characters",
            "termsOfService.enabled": setting.terms.enabled,
            "termsOfService.consentRequired": setting.terms.consent_required,
        }
    return {
        "url": setting.url,
        "validationKey": setting.validation_key,
        "subscriptions.enabled": setting.subscriptions_enabled,
        "userRegistration.enabled": setting.user_registration_enabled,
    }


def checked_email(value: str) -> str:
    """A recipient address as given, if it is one (400 otherwise)."""
    from email_validator import EmailNotValidError, validate_email

    if not value or len(value) > EMAIL_MAX or value.strip() != value:
        raise ValidationFailed(
            [FieldProblem("email", f"The address must have 1 to {EMAIL_MAX} characters.")]
        )
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            [FieldProblem("email", f"'{value}' is not a valid address: {exc}")]
        ) from None
    return value


class PortalService:
    """The portalsettings and notifications resources; the pages read the settings here."""

    def __init__(self, store: Store, clock: Clock, *, audit: Audit) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        # Settings read in the current request, per thread (chalice local serves requests on
        # threads): a page and the delegation checks it makes read each setting once.
        self._local = threading.local()

    # --- settings ------------------------------------------------------------------------------

    def setting(self, name: SettingName) -> Setting:
        """The stored setting, or its default; one GetItem, at most once a request."""
        request = context.current().request_id
        if not request:
            return self._store.portal.setting(name) or DEFAULTS[name]
        if getattr(self._local, "request", None) != request:
            self._local.request, self._local.seen = request, {}
        seen: dict[SettingName, Setting] = self._local.seen
        if name not in seen:
            seen[name] = self._store.portal.setting(name) or DEFAULTS[name]
        return seen[name]

    def all_settings(self) -> list[tuple[SettingName, Setting]]:
        """The three settings (GET portalsettings); one Query."""
        stored = self._store.portal.settings()
        return [(name, stored.get(name) or DEFAULTS[name]) for name in SettingName]

    def sign_in(self) -> SignInSettings:
        setting = self.setting(SettingName.SIGNIN)
        assert isinstance(setting, SignInSettings)
        return setting

    def sign_up(self) -> SignUpSettings:
        setting = self.setting(SettingName.SIGNUP)
        assert isinstance(setting, SignUpSettings)
        return setting

    def delegation(self) -> DelegationSettings:
        setting = self.setting(SettingName.DELEGATION)
        assert isinstance(setting, DelegationSettings)
        return setting

    def validation_key(self) -> str | None:
        """listSecrets: the delegation's key (None until one is set)."""
        return self.delegation().validation_key

    def save(
        self, name: SettingName, changes: SettingChanges, expected: Expected | None
    ) -> Setting:
        """PUT (``changes.whole``) or PATCH; If-Match is checked against the current version
        (a setting never saved has the default's)."""

        def attempt() -> Setting:
            stored = self._store.portal.setting(name)
            current = stored or DEFAULTS[name]
            check_expected(expected, current.version)
            now = self._clock()
            updated = replace(
                apply_changes(current, changes), version=next_version(current.version, now)
            )
            tx = self._store.transaction()
            self._store.portal.stage_put_setting(
                tx, updated, stored.version if stored else None, now
            )
            self._audit.stage(
                tx,
                "portal.settings.changed",
                Target("portalsettings", name.value),
                diff(_audited(current), _audited(updated)),
            )
            tx.commit()
            getattr(self._local, "seen", {}).pop(name, None)
            return updated

        return save_over_what_was_read(
            expected,
            attempt,
            _SAVE_ROUNDS,
            "The settings kept changing meanwhile; read them again.",
        )

    # --- notifications -------------------------------------------------------------------------

    @staticmethod
    def _view(name: NotificationName, recipients: list[Recipient]) -> NotificationView:
        title, description = NOTIFICATIONS[name]
        mine = [r for r in recipients if r.notification is name]
        return NotificationView(
            name=name,
            title=title,
            description=description,
            users=tuple(r.value for r in mine if r.kind is RecipientKind.USER),
            emails=tuple(r.value for r in mine if r.kind is RecipientKind.EMAIL),
        )

    def notifications(self) -> list[NotificationView]:
        """Every notification with its recipients: one Query."""
        recipients = self._store.portal.recipients()
        return [self._view(name, recipients) for name in NotificationName]

    def notification(self, name: NotificationName) -> NotificationView:
        return self._view(name, self._store.portal.recipients(name))

    def recipients(self, name: NotificationName, kind: RecipientKind) -> list[Recipient]:
        return [r for r in self._store.portal.recipients(name) if r.kind is kind]

    def user_recipient(self, name: NotificationName, user_id: str) -> Recipient:
        return Recipient(name, RecipientKind.USER, user_id)

    @staticmethod
    def email_recipient(name: NotificationName, email: str) -> Recipient:
        return Recipient(name, RecipientKind.EMAIL, checked_email(email))

    def has(self, recipient: Recipient) -> bool:
        return self._store.portal.has_recipient(recipient)

    def add(self, recipient: Recipient) -> bool:
        """PUT a recipient: True when added, False when it was there already. A user must
        exist (404); a notification has at most MAX_RECIPIENTS (409)."""
        if recipient.kind is RecipientKind.USER and self._store.users.get(recipient.value) is None:
            raise ResourceNotFound(
                f"User not found: '{recipient.value}'; only an existing user can be a recipient."
            )
        if self._store.portal.has_recipient(recipient):
            return False
        tx = self._store.transaction()
        self._store.portal.stage_add_recipient(tx, recipient)
        self._audit.stage(
            tx,
            "notification.recipient.added",
            Target("notification", recipient.notification.value),
            {recipient.kind.value: {"old": None, "new": recipient.value}},
        )
        try:
            tx.commit()
        except RecipientTaken:
            return False
        return True

    def remove(self, recipient: Recipient) -> bool:
        """DELETE a recipient: True when removed, False when it was not there."""
        if not self._store.portal.has_recipient(recipient):
            return False
        tx = self._store.transaction()
        self._store.portal.stage_remove_recipient(tx, recipient)
        self._audit.stage(
            tx,
            "notification.recipient.removed",
            Target("notification", recipient.notification.value),
            {recipient.kind.value: {"old": recipient.value, "new": None}},
        )
        try:
            tx.commit()
        except RecipientGone:
            return False
        return True
