"""The developer portal's settings (sign-in, sign-up, delegation) and publisher notifications."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from chalicelib.errors import FieldProblem, MalformedRequest, StateConflict, ValidationFailed

# Stored versions start here; an instance nobody configured answers its defaults at this version.
DEFAULT_VERSION = 1
# Within the 64 KB request limit (MAX_BODY_BYTES) that every management body has.
TERMS_MAX = 50_000
URL_MAX = 2000
# The key is HMAC-SHA512's: APIM generates 64 random bytes; fewer than 32 would be a weak key.
KEY_MIN_BYTES = 32
KEY_MAX_BYTES = 1024


class SettingName(StrEnum):
    """The three portal settings, by the last segment of their path."""

    SIGNIN = "signin"
    SIGNUP = "signup"
    DELEGATION = "delegation"


@dataclass(frozen=True)
class TermsOfService:
    text: str | None = None
    enabled: bool = False
    consent_required: bool = False


@dataclass(frozen=True)
class SignInSettings:
    """``enabled``: anonymous visitors of any portal page are sent to sign-in."""

    enabled: bool = False
    version: int = DEFAULT_VERSION


@dataclass(frozen=True)
class SignUpSettings:
    """``enabled``: the portal offers sign-up; the terms are shown and maybe must be accepted."""

    enabled: bool = True
    terms: TermsOfService = TermsOfService(text="Terms of service")
    version: int = DEFAULT_VERSION


@dataclass(frozen=True)
class DelegationSettings:
    """Where the portal hands sign-in, sign-up, account and subscription actions to.

    ``validation_key`` (base64) is secret: only ``listSecrets`` shows it.
    """

    url: str | None = None
    validation_key: str | None = None
    subscriptions_enabled: bool = False
    user_registration_enabled: bool = False
    version: int = DEFAULT_VERSION

    @property
    def enabled(self) -> bool:
        return self.subscriptions_enabled or self.user_registration_enabled


Setting = SignInSettings | SignUpSettings | DelegationSettings
DEFAULTS: dict[SettingName, Setting] = {
    SettingName.SIGNIN: SignInSettings(),
    SettingName.SIGNUP: SignUpSettings(),
    SettingName.DELEGATION: DelegationSettings(),
}


def setting_name(value: str) -> SettingName | None:
    """The setting a path segment names (case-insensitively), or None."""
    try:
        return SettingName(value.lower())
    except ValueError:
        return None


# --- bodies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingChanges:
    """What a PUT or PATCH body of any of the three settings says; None: not given.

    A PUT resets what it does not give to the default (``whole=True``), a PATCH keeps it. The
    validation key is the exception: a client cannot read it back (GET never shows it), so a
    body without one keeps the stored key, whatever the method.
    """

    whole: bool
    enabled: bool | None = None
    terms_text: str | None = None
    terms_enabled: bool | None = None
    terms_consent_required: bool | None = None
    url: str | None = None
    url_given: bool = False
    validation_key: str | None = None
    subscriptions_enabled: bool | None = None
    user_registration_enabled: bool | None = None


class _Reader:
    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.problems: list[FieldProblem] = []

    def boolean(self, obj: dict[str, Any], name: str, target: str) -> bool | None:
        value = obj.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problems.append(FieldProblem(target, f"'{target}' must be true or false."))
            return None
        return value

    def text(self, obj: dict[str, Any], name: str, target: str, max_len: int) -> str | None:
        value = obj.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(FieldProblem(target, f"'{target}' must be a string."))
            return None
        if len(value) > max_len:
            self.problems.append(
                FieldProblem(target, f"'{target}' may have at most {max_len} characters.")
            )
            return None
        return value

    def section(self, name: str) -> dict[str, Any]:
        value = self.props.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append(FieldProblem(name, f"'{name}' must be an object."))
            return {}
        return value


def _properties(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedRequest(
            "The body must be a JSON object.", [FieldProblem("body", "Not a JSON object.")]
        )
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise ValidationFailed([FieldProblem("properties", "'properties' must be an object.")])
    return props


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a delegation URL (absolute http(s), no fragment), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "'url' must be an absolute http or https URL."
    if parts.fragment or "#" in url:
        return "'url' must not have a fragment (#...)."
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        return "'url' must not contain spaces or control characters."
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a validation key (standard base64 of 32 to 1024 bytes), or None."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "'validationKey' must be standard base64 (A-Z, a-z, 0-9, +, /, = padding)."
    if not KEY_MIN_BYTES <= len(raw) <= KEY_MAX_BYTES:
        return (
            f"'validationKey' must decode to {KEY_MIN_BYTES} to {KEY_MAX_BYTES} bytes "
            f"(it decodes to {len(raw)}); APIM's keys are 64 random bytes."
        )
    return None


def read_setting_changes(name: SettingName, body: Any, *, whole: bool) -> SettingChanges:
    """The changes a body asks of setting ``name``; ValidationFailed lists every bad field.

    Properties of the other settings are ignored, as APIM's shared contract
    (PortalSettingsContractProperties) lets a client send them.
    """
    r = _Reader(_properties(body))
    props = r.props
    changes = SettingChanges(whole=whole)
    if name is SettingName.SIGNIN:
        changes = SettingChanges(whole=whole, enabled=r.boolean(props, "enabled", "enabled"))
    elif name is SettingName.SIGNUP:
        terms = r.section("termsOfService")
        changes = SettingChanges(
            whole=whole,
            enabled=r.boolean(props, "enabled", "enabled"),
            terms_text=r.text(terms, "text", "termsOfService.text", TERMS_MAX),
            terms_enabled=r.boolean(terms, "enabled", "termsOfService.enabled"),
            terms_consent_required=r.boolean(
                terms, "consentRequired", "termsOfService.consentRequired"
            ),
        )
    else:
        url = r.text(props, "url", "url", URL_MAX)
        if url is not None and url.strip() == "":
            url = None  # an empty URL clears it, as null does
        elif url is not None and (problem := url_problem(url)):
            r.problems.append(FieldProblem("url", problem))
        key = r.text(props, "validationKey", "validationKey", 4 * KEY_MAX_BYTES)
        if key is not None and (problem := key_problem(key)):
            r.problems.append(FieldProblem("validationKey", problem))
        changes = SettingChanges(
            whole=whole,
            url=url,
            url_given="url" in props,
            validation_key=key,
            subscriptions_enabled=r.boolean(
                r.section("subscriptions"), "enabled", "subscriptions.enabled"
            ),
            user_registration_enabled=r.boolean(
                r.section("userRegistration"), "enabled", "userRegistration.enabled"
            ),
        )
    if r.problems:
        raise ValidationFailed(r.problems)
    return changes


def _pick(given: Any, current: Any, default: Any, replacing: bool) -> Any:
    if given is not None:
        return given
    return default if replacing else current


def apply_changes(current: Setting, changes: SettingChanges) -> Setting:
    """The setting after the changes (the version is the caller's to set).

    Delegation must stay usable: once either kind is enabled, a URL and a key are required.
    """
    put = changes.whole
    if isinstance(current, SignInSettings):
        return replace(current, enabled=_pick(changes.enabled, current.enabled, False, put))
    if isinstance(current, SignUpSettings):
        base = SignUpSettings()
        terms = TermsOfService(
            text=_pick(changes.terms_text, current.terms.text, base.terms.text, put),
            enabled=_pick(changes.terms_enabled, current.terms.enabled, False, put),
            consent_required=_pick(
                changes.terms_consent_required, current.terms.consent_required, False, put
            ),
        )
        return replace(
            current, enabled=_pick(changes.enabled, current.enabled, True, put), terms=terms
        )
    url = changes.url if changes.url_given or put else current.url
    updated = replace(
        current,
        url=url,
        validation_key=changes.validation_key or current.validation_key,
        subscriptions_enabled=_pick(
            changes.subscriptions_enabled, current.subscriptions_enabled, False, put
        ),
        user_registration_enabled=_pick(
            changes.user_registration_enabled, current.user_registration_enabled, False, put
        ),
    )
    if updated.enabled:
        problems = []
        if not updated.url:
            problems.append(
                FieldProblem("url", "Delegation needs a 'url' while any of it is enabled.")
            )
        if not updated.validation_key:
            problems.append(
                FieldProblem(
                    "validationKey",
                    "Delegation needs a 'validationKey' (base64) while any of it is enabled.",
                )
            )
        if problems:
            raise ValidationFailed(problems)
    return updated


# --- publisher notifications -------------------------------------------------------------------


class NotificationName(StrEnum):
    """APIM's NotificationName values."""

    REQUEST = "RequestPublisherNotificationMessage"
    PURCHASE = "PurchasePublisherNotificationMessage"
    NEW_APPLICATION = "NewApplicationNotificationMessage"
    BCC = "BCC"
    NEW_ISSUE = "NewIssuePublisherNotificationMessage"
    ACCOUNT_CLOSED = "AccountClosedPublisher"
    QUOTA = "QuotaLimitApproachingPublisherNotificationMessage"


# name -> (title, description), as APIM's contract and portal describe them.
NOTIFICATIONS: dict[NotificationName, tuple[str, str]] = {
    NotificationName.REQUEST: (
        "Subscription requests (requiring approval)",
        "The following email recipients and users will receive email notifications about "
        "subscription requests for API products requiring approval.",
    ),
    NotificationName.PURCHASE: (
        "New subscriptions",
        "The following email recipients and users will receive email notifications about new "
        "API product subscriptions.",
    ),
    NotificationName.NEW_APPLICATION: (
        "Application gallery requests",
        "The following email recipients and users will receive email notifications when new "
        "applications are submitted to the application gallery.",
    ),
    NotificationName.BCC: (
        "BCC",
        "The following recipients will receive blind carbon copies of all emails sent to "
        "developers.",
    ),
    NotificationName.NEW_ISSUE: (
        "New issue or comment",
        "The following email recipients and users will receive email notifications when a new "
        "issue or comment is submitted on the developer portal.",
    ),
    NotificationName.ACCOUNT_CLOSED: (
        "Close account message",
        "The following email recipients and users will receive email notifications when "
        "developer closes his account.",
    ),
    NotificationName.QUOTA: (
        "Approaching subscription quota limit",
        "The following email recipients and users will receive email notifications when "
        "subscription usage gets close to usage quota.",
    ),
}
# The notifications this service sends as emails of their own (BCC copies other emails; the
# rest are about features it does not have: stored and listed, never sent).
SENT_NOTIFICATIONS = frozenset(
    {NotificationName.REQUEST, NotificationName.PURCHASE, NotificationName.ACCOUNT_CLOSED}
)
# Recipients (users and addresses together) of one notification: a notification's emails are
# staged in the transaction of the change that causes it, which DynamoDB caps at 100 writes.
MAX_RECIPIENTS = 50


def notification_name(value: str) -> NotificationName | None:
    """The notification a path segment names (case-insensitively), or None."""
    lowered = value.lower()
    for name in NotificationName:
        if name.value.lower() == lowered:
            return name
    return None


class RecipientKind(StrEnum):
    USER = "user"
    EMAIL = "email"


@dataclass(frozen=True)
class Recipient:
    """A user (``value`` is the user id) or a plain address (``value`` is the address)."""

    notification: NotificationName
    kind: RecipientKind
    value: str

    @property
    def key(self) -> str:
        """Unique per notification: user ids as given, addresses case-insensitively."""
        return self.value if self.kind is RecipientKind.USER else self.value.strip().lower()


class RecipientTaken(Exception):
    """Internal: the recipient was added meanwhile (the PUT then answers 200, not 201)."""


class RecipientGone(Exception):
    """Internal: the recipient was removed meanwhile (the DELETE then answers 204)."""


class RecipientLimit(StateConflict):
    """The notification has as many recipients as it may have (409)."""


def recipient_limit() -> RecipientLimit:
    return RecipientLimit(
        f"The notification has {MAX_RECIPIENTS} recipients, as many as it may have; "
        "remove one first."
    )
