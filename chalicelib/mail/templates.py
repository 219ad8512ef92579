"""APIM's 14 email templates and the 3 publisher notifications' emails, from templates/email/."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chalicelib.domain.email_templates import TemplateParameter

TEMPLATE_NAMES: tuple[str, ...] = (
    "accountClosedDeveloper",
    "applicationApprovedNotificationMessage",
    "confirmSignUpIdentityDefault",
    "emailChangeIdentityDefault",
    "inviteUserNotificationMessage",
    "newCommentNotificationMessage",
    "newDeveloperNotificationMessage",
    "newIssueNotificationMessage",
    "passwordResetByAdminNotificationMessage",
    "passwordResetIdentityDefault",
    "purchaseDeveloperNotificationMessage",
    "quotaLimitApproachingDeveloperNotificationMessage",
    "rejectDeveloperNotificationMessage",
    "requestDeveloperNotificationMessage",
)

_BY_LOWER = {name.lower(): name for name in TEMPLATE_NAMES}


@dataclass(frozen=True)
class EmailTemplate:
    """One template: subject, HTML and text bodies as Jinja2 sources, and its parameters."""

    name: str
    title: str
    description: str
    subject: str
    html: str
    text: str
    parameters: tuple[TemplateParameter, ...]

    @property
    def parameter_names(self) -> frozenset[str]:
        """The names the template may use."""
        return frozenset(p.name for p in self.parameters)


# Descriptions follow the contract's pattern ^[A-Za-z0-9-._]+$ (no spaces), so that a client may
# PUT back what it read; titles are free text.
_PARAMETERS: dict[str, tuple[str, str]] = {
    "AppId": ("Application id", "Identifier-of-the-application"),
    "AppName": ("Application name", "Name-of-the-application"),
    "BandwidthQuota": ("Bandwidth quota", "Bandwidth-allowed-by-the-quota"),
    "CommentText": ("Comment text", "Text-of-the-new-comment"),
    "CommenterFirstName": ("Commenter first name", "First-name-of-the-person-who-commented"),
    "CommenterLastName": ("Commenter last name", "Last-name-of-the-person-who-commented"),
    "ConfirmQuery": ("Confirmation query", "Query-string-of-the-confirmation-link"),
    "ConfirmUrl": ("Confirmation link", "One-time-link-that-confirms-the-request"),
    "DevEmail": ("Developer email", "Email-address-of-the-developer"),
    "DevFirstName": ("Developer first name", "First-name-of-the-developer"),
    "DevLastName": ("Developer last name", "Last-name-of-the-developer"),
    "DevPortalHost": ("Developer portal host", "Host-name-of-the-developer-portal"),
    "DevPortalUrl": ("Developer portal URL", "Address-of-the-developer-portal"),
    "DevUsername": ("Developer user name", "User-name-of-the-developer"),
    "ExpiresAt": ("When the link stops working", "Expiry-of-the-link-in-UTC.human-readable"),
    "IdentityProvider": ("Identity provider", "Identity-provider-the-developer-signed-up-with"),
    "IssueId": ("Issue id", "Identifier-of-the-issue"),
    "IssueName": ("Issue name", "Title-of-the-issue"),
    "OrganizationName": ("Organization name", "Name-of-the-organization-publishing-the-APIs"),
    "ProdId": ("Product id", "Identifier-of-the-product"),
    "ProdName": ("Product name", "Name-of-the-product"),
    "QuotaResetDate": ("Quota reset date", "When-the-quota-starts-again"),
    "SubDeclineReason": ("Decline reason", "Why-the-subscription-request-was-declined"),
    "SubId": ("Subscription id", "Identifier-of-the-subscription"),
    "SubName": ("Subscription name", "Name-of-the-subscription"),
    "SubPrimaryKey": ("Subscription primary key", "Primary-key-of-the-subscription"),
    "SubStartDate": ("Subscription start date", "When-the-subscription-started"),
    "SubTerm": ("Subscription term", "How-long-the-subscription-lasts"),
}

_DEV = ("DevFirstName", "DevLastName")
_LINK = ("ConfirmUrl", "DevPortalHost", "ConfirmQuery")

# name -> (title, description, parameter names); titles and parameters from the contract's
# table 3.3. ExpiresAt is ours: people ask to see the real expiry of a link in the mail.
# passwordResetByAdminNotificationMessage deliberately lacks APIM's DevPassword: we never email
# passwords.
_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "accountClosedDeveloper": (
        "Developer farewell letter",
        "Sent to a developer when their account is closed.",
        (*_DEV, "OrganizationName", "DevPortalUrl"),
    ),
    "applicationApprovedNotificationMessage": (
        "Application gallery submission approved (deprecated)",
        "Sent to a developer when their application is published in the application gallery.",
        ("AppId", "AppName", *_DEV, "OrganizationName", "DevPortalUrl"),
    ),
    "confirmSignUpIdentityDefault": (
        "New developer account confirmation",
        "Sent to a developer who signed up, to confirm their email address.",
        (*_DEV, "OrganizationName", "DevPortalUrl", *_LINK, "ExpiresAt"),
    ),
    "emailChangeIdentityDefault": (
        "Email change confirmation",
        "Sent to a new email address of a developer, to confirm it before it replaces the old one.",
        (*_DEV, "OrganizationName", "DevPortalUrl", *_LINK, "ExpiresAt"),
    ),
    "inviteUserNotificationMessage": (
        "Invite user",
        "Sent to a person invited by an administrator; the link sets a password and activates "
        "the account.",
        ("OrganizationName", *_DEV, *_LINK, "ExpiresAt"),
    ),
    "newCommentNotificationMessage": (
        "New comment added to an issue (deprecated)",
        "Sent to a developer when someone comments on their issue.",
        (
            *_DEV,
            "CommenterFirstName",
            "CommenterLastName",
            "IssueId",
            "IssueName",
            "CommentText",
            "OrganizationName",
            "DevPortalUrl",
        ),
    ),
    "newDeveloperNotificationMessage": (
        "Developer welcome letter (sent after the account is confirmed)",
        "Sent to a developer once their account is confirmed.",
        (
            *_DEV,
            "DevUsername",
            "DevEmail",
            "OrganizationName",
            "DevPortalUrl",
            "IdentityProvider",
        ),
    ),
    "newIssueNotificationMessage": (
        "New issue received (deprecated)",
        "Sent to a developer when their issue is received.",
        (*_DEV, "IssueId", "IssueName", "OrganizationName", "DevPortalUrl"),
    ),
    "passwordResetByAdminNotificationMessage": (
        "Password reset by publisher",
        "Sent to a developer when an administrator sets a new password for them; the password "
        "itself is never part of the email.",
        (*_DEV, "OrganizationName", "DevPortalUrl"),
    ),
    "passwordResetIdentityDefault": (
        "Password change confirmation (one-time, perishable link)",
        "Sent to a developer who asked to reset their password.",
        (*_DEV, "OrganizationName", "DevPortalUrl", *_LINK, "ExpiresAt"),
    ),
    "purchaseDeveloperNotificationMessage": (
        "New subscription activated",
        "Sent to a developer when their subscription to a product becomes active.",
        (
            *_DEV,
            "ProdId",
            "ProdName",
            "OrganizationName",
            "SubStartDate",
            "SubTerm",
            "DevPortalUrl",
        ),
    ),
    "quotaLimitApproachingDeveloperNotificationMessage": (
        "Developer quota limit approaching",
        "Sent to a developer whose subscription nears its usage quota.",
        (
            *_DEV,
            "ProdName",
            "OrganizationName",
            "SubPrimaryKey",
            "DevPortalUrl",
            "QuotaResetDate",
        ),
    ),
    "rejectDeveloperNotificationMessage": (
        "Subscription request declined",
        "Sent to a developer when their subscription request is declined.",
        (*_DEV, "SubDeclineReason", "ProdName", "OrganizationName", "DevPortalUrl"),
    ),
    "requestDeveloperNotificationMessage": (
        "Subscription request received",
        "Sent to a developer when their subscription request awaits approval.",
        (*_DEV, "DevEmail", "ProdName", "OrganizationName", "DevPortalUrl"),
    ),
}


# The emails of publisher notifications (domain/portal.py: SENT_NOTIFICATIONS), named after the
# notification. APIM offers no editable template for them: they are not among TEMPLATE_NAMES,
# and only the relay's template source (bootstrap) knows them.
_SUBSCRIPTION = ("ProdId", "ProdName", "SubId", "SubName")
_PUBLISHER_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "RequestPublisherNotificationMessage": (
        "Subscription requests (requiring approval)",
        "Sent to the notification's recipients when a developer asks for a subscription that "
        "needs approval.",
        (*_DEV, "DevEmail", *_SUBSCRIPTION, "OrganizationName", "DevPortalUrl"),
    ),
    "PurchasePublisherNotificationMessage": (
        "New subscriptions",
        "Sent to the notification's recipients when a product subscription becomes active.",
        (*_DEV, "DevEmail", *_SUBSCRIPTION, "SubStartDate", "OrganizationName", "DevPortalUrl"),
    ),
    "AccountClosedPublisher": (
        "Close account message",
        "Sent to the notification's recipients when a developer closes their account.",
        (*_DEV, "DevEmail", "OrganizationName", "DevPortalUrl"),
    ),
}
PUBLISHER_TEMPLATE_NAMES: tuple[str, ...] = tuple(_PUBLISHER_SPECS)


def publisher_template(name: str) -> EmailTemplate:
    """A publisher notification's email (files read once per container); KeyError if none."""
    if name not in _PUBLISHER_SPECS:
        raise KeyError(name)
    return _load(name)


def canonical_name(name: str) -> str | None:
    """The camelCase template name matching ``name`` case-insensitively, or None."""
    return _BY_LOWER.get(name.lower())


def templates_dir() -> Path:
    """The top-level ``templates/`` folder.

    In the repository it sits beside ``app.py``; in the Lambda zip Chalice vendors it at the zip
    root, again beside ``app.py`` and ``chalicelib/``, so one path covers both layouts. Keep every
    lookup going through here so a layout change is fixed in one place.
    """
    return Path(__file__).resolve().parents[2] / "templates"


def template_parameters(name: str) -> tuple[TemplateParameter, ...]:
    """The parameters a template offers; KeyError for an unknown name."""
    canonical = canonical_name(name)
    if canonical is None:
        raise KeyError(name)
    return tuple(TemplateParameter(p, *_PARAMETERS[p]) for p in _SPECS[canonical][2])


@cache
def _load(name: str) -> EmailTemplate:
    title, description, parameters = _SPECS.get(name) or _PUBLISHER_SPECS[name]
    folder = templates_dir() / "email"
    return EmailTemplate(
        name=name,
        title=title,
        description=description,
        # The file ends with a newline; a subject is one line.
        subject=(folder / f"{name}.subject.txt").read_text(encoding="utf-8").strip(),
        html=(folder / f"{name}.html").read_text(encoding="utf-8"),
        text=(folder / f"{name}.txt").read_text(encoding="utf-8"),
        parameters=tuple(TemplateParameter(p, *_PARAMETERS[p]) for p in parameters),
    )


def default_template(name: str) -> EmailTemplate:
    """The built-in template (files read once per container); KeyError for an unknown name."""
    canonical = canonical_name(name)
    if canonical is None:
        raise KeyError(name)
    return _load(canonical)
